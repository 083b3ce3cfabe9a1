//! Switchboard formats, ordering, slices, recovery (docs/semantics/mailman-queues-runners.md §2–§6).

use model::message::Message;
use model::msgdata::MsgData;
use model::profile::MailmanProfile;
use model::slice::{in_slice, Slice, SliceRule};
use model::switchboard::{
    BadMessages, BakRecovery, DequeueError, Finish, QueuedMessage, Switchboard, SwitchboardSettings,
};
use model::{BakOutcome, ModelEvent};

use crate::support::{block_on, TestOs};

fn text(id: &str) -> String {
    format!("From: a@example.org\nSubject: hello\nMessage-Id: <{id}>\n\nbody\n")
}

fn data(list: &str) -> MsgData {
    MsgData { listname: Some(list.to_string()), tolist: true, plaintext: true, ..MsgData::default() }
}

#[test]
fn one_pck_entry_goes_through_bak_and_finish_leaves_nothing() {
    let os = TestOs::new(1);
    let s = SwitchboardSettings::default();
    block_on(async {
        let sb = Switchboard::open(&os, &s, "in", Slice::WHOLE).await.unwrap();
        let fb = sb.enqueue(QueuedMessage::Text(text("m1@x")), data("test")).await.unwrap();
        assert_eq!(os.names("qfiles/in"), vec![format!("{fb}.pck")]);
        assert_eq!(sb.files().await.unwrap(), vec![fb.clone()]);
        let d = sb.dequeue(&fb).await.unwrap();
        assert_eq!(d.msg.unwrap().message_id(), "m1@x");
        assert_eq!(d.data.listname.as_deref(), Some("test"));
        assert_eq!(os.names("qfiles/in"), vec![format!("{fb}.bak")]);
        sb.finish(&fb, Finish::Remove).await;
        assert!(os.names("qfiles/in").is_empty());
    });
    assert!(os
        .events()
        .iter()
        .any(|e| matches!(e, ModelEvent::QueueEnqueued { message_id, .. } if message_id == "m1@x")));
}

#[test]
fn filebase_is_received_time_plus_sha1_and_reenqueue_keeps_the_time() {
    let os = TestOs::new(1);
    let s = SwitchboardSettings::default();
    block_on(async {
        let sb = Switchboard::open(&os, &s, "in", Slice::WHOLE).await.unwrap();
        let fb = sb.enqueue(QueuedMessage::Text(text("a@x")), data("test")).await.unwrap();
        assert_eq!(fb.split_once('+').unwrap().0, "1700000000.0");
        assert_eq!(fb.split_once('+').unwrap().1.len(), 40);
        let d = sb.dequeue(&fb).await.unwrap();
        os.advance(std::time::Duration::from_secs(5));
        let fb2 = sb.enqueue(QueuedMessage::Parsed(d.msg.unwrap()), d.data).await.unwrap();
        assert_eq!(fb2.split_once('+').unwrap().0, "1700000000.0");
        assert_ne!(fb2, fb);
    });
}

#[test]
fn files_are_listed_fifo_by_received_time() {
    let os = TestOs::new(1);
    let s = SwitchboardSettings::default();
    block_on(async {
        let sb = Switchboard::open(&os, &s, "in", Slice::WHOLE).await.unwrap();
        let mut expect = Vec::new();
        for (i, t) in [30.0, 10.0, 20.0].iter().enumerate() {
            let d = MsgData { received_time: Some(1_700_000_000.0 + t), ..data("test") };
            let fb = sb.enqueue(QueuedMessage::Text(text(&format!("m{i}@x"))), d).await.unwrap();
            expect.push((*t as u64, fb));
        }
        expect.sort();
        let want: Vec<String> = expect.into_iter().map(|(_, fb)| fb).collect();
        assert_eq!(sb.files().await.unwrap(), want);
    });
}

#[test]
fn equal_keys_drop_an_entry_before_2_1_9_and_get_a_delta_after() {
    let os = TestOs::new(1);
    let mut s = SwitchboardSettings::default();
    block_on(async {
        let sb = Switchboard::open(&os, &s, "in", Slice::WHOLE).await.unwrap();
        sb.enqueue(QueuedMessage::Text(text("a@x")), data("test")).await.unwrap();
        sb.enqueue(QueuedMessage::Text(text("b@x")), data("test")).await.unwrap();
        assert_eq!(sb.files().await.unwrap().len(), 2);
    });
    s.key_collision = model::switchboard::KeyCollision::DropUntilNextPass;
    block_on(async {
        let sb = Switchboard::new(&os, &s, "in", Slice::WHOLE);
        assert_eq!(sb.files().await.unwrap().len(), 1);
    });
}

#[test]
fn two_file_entries_are_written_message_first_and_dequeued_by_read_and_unlink() {
    let os = TestOs::new(1);
    let s = MailmanProfile::V2_1Early.settings().queue;
    block_on(async {
        let sb = Switchboard::open(&os, &s, "in", Slice::WHOLE).await.unwrap();
        let fb = sb.enqueue(QueuedMessage::Text(text("m@x")), data("test")).await.unwrap();
        assert_eq!(os.names("qfiles/in"), vec![format!("{fb}.db"), format!("{fb}.msg")]);
        assert_eq!(sb.files().await.unwrap(), vec![fb.clone()]);
        let d = sb.dequeue(&fb).await.unwrap();
        assert_eq!(d.msg.unwrap().message_id(), "m@x");
        assert!(os.names("qfiles/in").is_empty());
        sb.finish(&fb, Finish::Preserve).await;
        assert!(!os.exists("qfiles/bad"));
    });
}

#[test]
fn two_file_dequeue_without_db_processes_for_no_list() {
    let os = TestOs::new(1);
    let s = MailmanProfile::V2_1Early.settings().queue;
    block_on(async {
        let sb = Switchboard::open(&os, &s, "in", Slice::WHOLE).await.unwrap();
        let fb = sb.enqueue(QueuedMessage::Text(text("m@x")), data("test")).await.unwrap();
        std::fs::remove_file(os.path(&format!("qfiles/in/{fb}.db"))).unwrap();
        let d = sb.dequeue(&fb).await.unwrap();
        assert_eq!(d.data, MsgData::default());
        assert!(d.msg.is_some());
    });
}

#[test]
fn flat_2_0_entries_are_sha_db_and_msg_in_one_directory() {
    let os = TestOs::new(1);
    let s = MailmanProfile::V2_0.settings().queue;
    block_on(async {
        let sb = Switchboard::open(&os, &s, "in", Slice::WHOLE).await.unwrap();
        let sha = sb.enqueue(QueuedMessage::Text(text("m@x")), data("test")).await.unwrap();
        assert_eq!(sha.len(), 40);
        assert_eq!(os.names("qfiles"), vec![format!("{sha}.db"), format!("{sha}.msg")]);
        assert_eq!(sb.files().await.unwrap(), vec![sha.clone()]);
        let d = sb.read_flat(&sha).await.unwrap();
        assert_eq!(d.data.listname.as_deref(), Some("test"));
        sb.remove_flat(&sha).await.unwrap();
        assert!(os.names("qfiles").is_empty());
    });
}

fn digest(first: u8, fill: u8) -> [u8; 20] {
    let mut d = [fill; 20];
    d[0] = first;
    d
}

#[test]
fn slices_split_the_hash_space_with_inclusive_bounds_from_2_1_9() {
    let two = |i| Slice { index: i, count: 2 };
    let low = digest(0x00, 0x00);
    let top_of_first = digest(0x7f, 0xff);
    let high = digest(0xff, 0xff);
    let r = SliceRule::InclusiveUpper;
    assert!(in_slice(&low, two(0), r) && !in_slice(&low, two(1), r));
    assert!(in_slice(&top_of_first, two(0), r) && !in_slice(&top_of_first, two(1), r));
    assert!(in_slice(&high, two(1), r) && !in_slice(&high, two(0), r));
    assert!(in_slice(&high, Slice::WHOLE, r));
}

#[test]
fn exclusive_upper_bound_leaves_a_hole_before_2_1_9() {
    let top_of_first = digest(0x7f, 0xff);
    let r = SliceRule::ExclusiveUpper;
    assert!(!in_slice(&top_of_first, Slice { index: 0, count: 2 }, r));
    assert!(!in_slice(&top_of_first, Slice { index: 1, count: 2 }, r));
}

#[test]
fn slice_zero_takes_the_whole_hash_space_in_2_1_1_to_2_1_5() {
    let high = digest(0xff, 0x00);
    let r = SliceRule::SliceZeroTakesAll;
    for count in [2, 4, 8] {
        assert!(in_slice(&high, Slice { index: 0, count }, r));
        assert!(in_slice(&high, Slice { index: count - 1, count }, r));
    }
}

#[test]
fn bak_files_are_recovered_until_max_bak_count_then_preserved() {
    let os = TestOs::new(1);
    let s = SwitchboardSettings::default();
    block_on(async {
        let sb = Switchboard::open(&os, &s, "in", Slice::WHOLE).await.unwrap();
        let fb = sb.enqueue(QueuedMessage::Text(text("m@x")), data("test")).await.unwrap();
        for round in 1..=3u32 {
            // A runner crashes while processing: the `.bak` stays.
            sb.dequeue(&fb).await.unwrap();
            sb.recover_backup_files().await.unwrap();
            if round < 3 {
                assert_eq!(os.names("qfiles/in"), vec![format!("{fb}.pck")], "round {round}");
            }
        }
        assert!(os.names("qfiles/in").is_empty());
        assert_eq!(os.names("qfiles/bad"), vec![format!("{fb}.psv")]);
    });
    let outcomes: Vec<(BakOutcome, u32)> = os
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ModelEvent::BakRecovered { outcome, bak_count, .. } => Some((outcome, bak_count)),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![(BakOutcome::Recovered, 1), (BakOutcome::Recovered, 2), (BakOutcome::PreservedMaxCount, 3)]
    );
}

#[test]
fn bak_files_are_recovered_forever_in_2_1_9() {
    let os = TestOs::new(1);
    let s = SwitchboardSettings { bak_recovery: BakRecovery::Always, ..SwitchboardSettings::default() };
    block_on(async {
        let sb = Switchboard::open(&os, &s, "in", Slice::WHOLE).await.unwrap();
        let fb = sb.enqueue(QueuedMessage::Text(text("m@x")), data("test")).await.unwrap();
        for _ in 0..5 {
            sb.dequeue(&fb).await.unwrap();
            sb.recover_backup_files().await.unwrap();
        }
        assert_eq!(os.names("qfiles/in"), vec![format!("{fb}.pck")]);
    });
}

#[test]
fn a_truncated_entry_fails_to_decode_without_panicking() {
    let os = TestOs::new(1);
    let s = SwitchboardSettings::default();
    block_on(async {
        let sb = Switchboard::open(&os, &s, "in", Slice::WHOLE).await.unwrap();
        let fb = sb.enqueue(QueuedMessage::Text(text("m@x")), data("test")).await.unwrap();
        let p = os.path(&format!("qfiles/in/{fb}.pck"));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 7]).unwrap();
        let e = sb.dequeue(&fb).await.unwrap_err();
        assert!(matches!(e, DequeueError::Decode(_)), "{e:?}");
        sb.finish(&fb, Finish::Preserve).await;
        assert_eq!(os.names("qfiles/bad"), vec![format!("{fb}.psv")]);
    });
}

#[test]
fn a_message_round_trips_through_its_text_form() {
    let m = Message::parse(&text("r@x")).unwrap();
    assert_eq!(Message::parse(&m.to_text()).unwrap(), m);
    assert!(Message::parse("not a header\n\nbody").is_err());
}

/// Mailman 2.1.26 `Switchboard.recover_backup_files`: a `.bak` that does not
/// unpickle (here: zero bytes) is logged and preserved in `bad/`, never
/// renamed back to `.pck` (docs/semantics/mailman-corrupt-files.md).
#[test]
fn a_zero_length_bak_is_preserved_at_start_up_with_mailman_s_log_line() {
    let os = TestOs::new(1);
    // QRUNNER_SAVE_BAD_MESSAGES = No does not reach `finish(preserve=True)`.
    let s = SwitchboardSettings { bad_messages: BadMessages::Discard, ..SwitchboardSettings::default() };
    let fb = "1700000000.5+0123456789abcdef0123456789abcdef01234567";
    block_on(async {
        let sb = Switchboard::open(&os, &s, "in", Slice::WHOLE).await.unwrap();
        std::fs::write(os.path(&format!("qfiles/in/{fb}.bak")), b"").unwrap();
        sb.recover_backup_files().await.unwrap();
    });
    assert!(os.names("qfiles/in").is_empty());
    assert_eq!(os.names("qfiles/bad"), vec![format!("{fb}.psv")]);
    let errors: Vec<String> = os
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ModelEvent::Log { log, message } if log == "error" => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(errors, vec![format!("Unpickling .bak exception: EOFError: empty entry\npreserving file: {fb}")]);
}
