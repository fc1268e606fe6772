//! A single-waiter wake-up flag for tasks on one executor: set it any number of times,
//! the waiting task wakes once. Lets a burst of work (many frames, many replies) become
//! one flush or one cross-shard send.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Default)]
pub struct Notify {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    pub fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Wakes every task waiting for a condition on one executor (many connections waiting
/// for their shard's tree to catch up), without polling: whoever changes the condition
/// calls [`Broadcast::notify_all`].
#[derive(Default)]
pub struct Broadcast {
    wakers: RefCell<Vec<Waker>>,
}

impl Broadcast {
    pub fn notify_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in wakers {
            w.wake();
        }
    }

    /// Returns once `ready()` holds, checking it again after each `notify_all`.
    pub async fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        poll_fn(|cx| {
            if ready() {
                Poll::Ready(())
            } else {
                self.wakers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn broadcast_wakes_every_waiter_once_the_condition_holds() {
        let ex = glommio::LocalExecutorBuilder::default().make().unwrap();
        ex.run(async {
            let b = Rc::new(Broadcast::default());
            let level = Rc::new(Cell::new(0));
            let done = Rc::new(Cell::new(0));
            let mut tasks = Vec::new();
            for want in [1, 2, 2] {
                let (b, level, done) = (b.clone(), level.clone(), done.clone());
                tasks.push(glommio::spawn_local(async move {
                    b.wait_until(|| level.get() >= want).await;
                    done.set(done.get() + 1);
                }));
            }
            glommio::yield_if_needed().await;
            glommio::executor().yield_now().await;
            assert_eq!(done.get(), 0);
            level.set(1);
            b.notify_all();
            glommio::executor().yield_now().await;
            assert_eq!(done.get(), 1);
            level.set(2);
            b.notify_all();
            for t in tasks {
                t.await;
            }
            assert_eq!(done.get(), 3);
        });
    }
}
