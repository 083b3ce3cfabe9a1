//! `MemberMap`: the in-memory form of the per-member dictionaries of a list
//! config (`passwords`, `user_options`, `language`, `usernames`).
//!
//! A list is loaded after nearly every save, so these maps are decoded
//! thousands of times per run. As `BTreeMap<String, _>` each
//! member cost two allocations, a tree insert and a tree drop per map. Here
//! every key and string value of one map lives in one `String`, and the
//! entries are a sorted `Vec` of spans into it: a decode is a few
//! allocations, whatever the member count.
//!
//! The map is a drop-in for `BTreeMap<String, V>` as far as serde JSON can
//! tell: it asks the deserializer for the same things in the same order (so
//! a corrupt file fails with the same message at the same position), keeps
//! the last value of a duplicate key, and serialises in key order. A saved
//! file's bytes are therefore the bytes `BTreeMap` would write.
//! It leaves out mutation: the model never changes these maps after
//! `ListConfig::new`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, MapAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string value of a `MemberMap`: a byte range of the map's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn get(self, text: &str) -> &str {
        &text[self.start as usize..self.end as usize]
    }
}

/// How a `MemberMap` stores one value: a string as a [`Span`] of the map's
/// text, a number as itself.
pub trait MemberValue: Copy {
    /// What a lookup returns.
    type View<'a>: fmt::Debug + PartialEq + Serialize;
    /// Decodes one value, appending any text to `text`, exactly as
    /// `Deserialize` for the value's `BTreeMap` type would.
    fn decode<'de, D: Deserializer<'de>>(deserializer: D, text: &mut String) -> Result<Self, D::Error>;
    /// Stores `view`, appending any text to `text`.
    fn store(view: Self::View<'_>, text: &mut String) -> Self;
    fn view(self, text: &str) -> Self::View<'_>;
}

impl MemberValue for Span {
    type View<'a> = &'a str;

    fn decode<'de, D: Deserializer<'de>>(deserializer: D, text: &mut String) -> Result<Self, D::Error> {
        AppendString(text).deserialize(deserializer)
    }

    fn store(view: &str, text: &mut String) -> Self {
        append(text, view)
    }

    fn view(self, text: &str) -> &str {
        self.get(text)
    }
}

impl MemberValue for u32 {
    type View<'a> = u32;

    fn decode<'de, D: Deserializer<'de>>(deserializer: D, _text: &mut String) -> Result<Self, D::Error> {
        u32::deserialize(deserializer)
    }

    fn store(view: u32, _text: &mut String) -> Self {
        view
    }

    fn view(self, _text: &str) -> u32 {
        self
    }
}

/// A map from member address to `V`, sorted by address, with no duplicate
/// addresses.
#[derive(Clone)]
pub struct MemberMap<V: MemberValue> {
    text: String,
    entries: Vec<(Span, V)>,
}

impl<V: MemberValue> MemberMap<V> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value for `address`.
    pub fn get(&self, address: &str) -> Option<V::View<'_>> {
        let i = self.entries.binary_search_by(|(key, _)| key.get(&self.text).cmp(address)).ok()?;
        Some(self.entries[i].1.view(&self.text))
    }

    /// The entries in address order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, V::View<'_>)> + '_ {
        self.entries.iter().map(|&(key, value)| (key.get(&self.text), value.view(&self.text)))
    }

    /// Restores the `BTreeMap` invariant after entries were appended in input
    /// order: sorted by key, and of equal keys only the last one, which is
    /// what repeated `BTreeMap::insert` keeps. Files this model wrote are
    /// already sorted, so this is one pass of comparisons.
    fn normalise(&mut self) {
        let text = &self.text;
        let sorted = self.entries.windows(2).all(|w| w[0].0.get(text) < w[1].0.get(text));
        if sorted {
            return;
        }
        // A stable sort keeps equal keys in input order; then the last of each
        // run of equal keys wins.
        self.entries.sort_by(|a, b| a.0.get(text).cmp(b.0.get(text)));
        let mut kept: Vec<(Span, V)> = Vec::with_capacity(self.entries.len());
        for &entry in &self.entries {
            match kept.last_mut() {
                Some(last) if last.0.get(text) == entry.0.get(text) => *last = entry,
                _ => kept.push(entry),
            }
        }
        self.entries = kept;
    }
}

impl<'a, V: MemberValue> FromIterator<(&'a str, V::View<'a>)> for MemberMap<V> {
    fn from_iter<I: IntoIterator<Item = (&'a str, V::View<'a>)>>(iter: I) -> Self {
        let mut map = MemberMap { text: String::new(), entries: Vec::new() };
        for (key, value) in iter {
            let key = append(&mut map.text, key);
            let value = V::store(value, &mut map.text);
            map.entries.push((key, value));
        }
        map.normalise();
        map
    }
}

impl<V: MemberValue> PartialEq for MemberMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<V: MemberValue> fmt::Debug for MemberMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: MemberValue> Serialize for MemberMap<V> {
    /// As `BTreeMap`: `collect_map` over the entries in key order.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, V: MemberValue> Deserialize<'de> for MemberMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

/// `BTreeMap`'s visitor, storing into one text.
struct MapVisitor<V>(PhantomData<V>);

impl<'de, V: MemberValue> Visitor<'de> for MapVisitor<V> {
    type Value = MemberMap<V>;

    /// `BTreeMap`'s words, so that a type error reads the same.
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a map")
    }

    /// `BTreeMap`'s loop: `next_entry` is `next_key_seed` then
    /// `next_value_seed`, here with seeds that append to the text.
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = MemberMap { text: String::new(), entries: Vec::new() };
        while let Some(key) = access.next_key_seed(AppendString(&mut map.text))? {
            let value = access.next_value_seed(ValueSeed::<V>(&mut map.text, PhantomData))?;
            map.entries.push((key, value));
        }
        map.normalise();
        Ok(map)
    }
}

struct ValueSeed<'t, V>(&'t mut String, PhantomData<V>);

impl<'de, V: MemberValue> DeserializeSeed<'de> for ValueSeed<'_, V> {
    type Value = V;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<V, D::Error> {
        V::decode(deserializer, self.0)
    }
}

/// `String`'s `Deserialize` (`deserialize_string` with serde's
/// `StringVisitor`), appending to a text instead of allocating.
struct AppendString<'t>(&'t mut String);

impl<'de> DeserializeSeed<'de> for AppendString<'_> {
    type Value = Span;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Span, D::Error> {
        deserializer.deserialize_string(self)
    }
}

impl<'de> Visitor<'de> for AppendString<'_> {
    type Value = Span;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
        Ok(append(self.0, v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Span, E> {
        match std::str::from_utf8(v) {
            Ok(s) => Ok(append(self.0, s)),
            Err(_) => Err(de::Error::invalid_value(Unexpected::Bytes(v), &self)),
        }
    }
}

fn append(text: &mut String, s: &str) -> Span {
    let start = u32::try_from(text.len()).expect("a member map's text fits in 4 GiB");
    text.push_str(s);
    let end = u32::try_from(text.len()).expect("a member map's text fits in 4 GiB");
    Span { start, end }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Decodes `json` both ways and requires the same value or the same error
    /// text, and the same bytes when encoded again.
    fn check<V: MemberValue, T>(json: &str)
    where
        T: for<'de> Deserialize<'de> + Serialize + fmt::Debug,
        for<'a> V::View<'a>: fmt::Debug,
    {
        let ours = serde_json::from_str::<MemberMap<V>>(json);
        let theirs = serde_json::from_str::<T>(json);
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => {
                assert_eq!(serde_json::to_string(&ours).unwrap(), serde_json::to_string(&theirs).unwrap(), "{json}");
                assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{json}");
            }
            (Err(ours), Err(theirs)) => assert_eq!(ours.to_string(), theirs.to_string(), "{json}"),
            (ours, theirs) => panic!("{json}: ours {ours:?}, BTreeMap's {theirs:?}"),
        }
    }

    #[test]
    fn member_map_decodes_and_encodes_as_btree_map_does() {
        let cases = [
            r#"{}"#,
            r#"{"b":"2","a":"1"}"#,
            r#"{"a":"1","b":"2","a":"3"}"#,
            r#"{ "a" : "x\u0041\n" , "c":"" }"#,
            r#"{"a":1}"#,
            r#"{"a":"1""#,
            r#"{"a":"1","#,
            r#"{"a""#,
            r#"[]"#,
            r#"null"#,
            r#"{"a":null}"#,
            r#"{1:"a"}"#,
        ];
        for json in cases {
            check::<Span, BTreeMap<String, String>>(json);
        }
        let cases = [
            r#"{"b":2,"a":1,"b":0}"#,
            r#"{"a":-0}"#,
            r#"{"a":-1}"#,
            r#"{"a":4294967296}"#,
            r#"{"a":1.5}"#,
            r#"{"a":"1"}"#,
            r#"{"a":1"#,
        ];
        for json in cases {
            check::<u32, BTreeMap<String, u32>>(json);
        }
    }
}
