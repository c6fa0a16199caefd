//! Independent tasks spread over the cores: each worker takes the next task until none is
//! left, so a list sorted longest first keeps every core busy to the end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `f` on every task, as many at once as there are cores (at most 8), and returns the
/// results in the tasks' order.
pub fn each<T: Sync, O: Send>(tasks: &[T], f: impl Fn(&T) -> O + Sync) -> Vec<O> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, O)>> = Mutex::new(Vec::with_capacity(tasks.len()));
    std::thread::scope(|s| {
        for _ in 0..workers.min(tasks.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(task) = tasks.get(i) else { break };
                let out = f(task);
                done.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, out));
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, o)| o).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_task_runs_once_and_results_keep_their_order() {
        let tasks: Vec<u64> = (0..100).collect();
        let out = super::each(&tasks, |t| t * 2);
        assert_eq!(out, tasks.iter().map(|t| t * 2).collect::<Vec<_>>());
        assert!(super::each(&[] as &[u64], |t| *t).is_empty());
    }
}
