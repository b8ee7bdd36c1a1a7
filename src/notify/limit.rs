//! Open sockets, capped per client address and in all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open sockets, capped per client address and in all: one address cannot hold the server's
/// sockets, and many addresses together cannot exhaust its file descriptors.
#[derive(Debug)]
pub struct ConnectionLimit {
    per_address: usize,
    total: usize,
    open: Mutex<OpenSockets>,
}

#[derive(Debug, Default)]
struct OpenSockets {
    by_address: HashMap<std::net::IpAddr, usize>,
    total: usize,
}

/// One open socket's place under the limit; freed when dropped.
#[derive(Debug)]
pub struct Slot {
    limit: Arc<ConnectionLimit>,
    address: std::net::IpAddr,
}

impl ConnectionLimit {
    /// At most `per_address` sockets from one address and `total` from all of them.
    pub fn new(per_address: usize, total: usize) -> Arc<ConnectionLimit> {
        Arc::new(ConnectionLimit {
            per_address,
            total,
            open: Mutex::default(),
        })
    }

    /// A slot for one more socket from `address`, unless it or the server has reached its cap.
    pub fn acquire(self: &Arc<Self>, address: std::net::IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.total {
            return None;
        }
        let count = open.by_address.entry(address).or_default();
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        open.total += 1;
        Some(Slot {
            limit: self.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
            open.total -= 1;
        }
    }
}
