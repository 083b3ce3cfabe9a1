//! A bounded set of concurrent futures polled from one process's task.
//!
//! Models the concurrency of a forking server (Exim forks per connection)
//! and of a client with several open connections, without threads and
//! without spawning runtime tasks: every session is a future owned by the
//! process, so killing the process drops them all at once. Polling order is
//! the insertion order, which keeps runs deterministic.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct TaskSet<'a, T> {
    tasks: Vec<Pin<Box<dyn Future<Output = T> + 'a>>>,
}

impl<T> Default for TaskSet<'_, T> {
    fn default() -> Self {
        TaskSet { tasks: Vec::new() }
    }
}

impl<'a, T> TaskSet<'a, T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, task: impl Future<Output = T> + 'a) {
        self.tasks.push(Box::pin(task));
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Polls every task once, in order; returns the first that finished.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if self.tasks.is_empty() {
            return Poll::Ready(None);
        }
        for i in 0..self.tasks.len() {
            if let Poll::Ready(v) = self.tasks[i].as_mut().poll(cx) {
                drop(self.tasks.remove(i));
                return Poll::Ready(Some(v));
            }
        }
        Poll::Pending
    }

    /// Waits for the next task to finish (`None` when the set is empty).
    pub async fn next(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}
