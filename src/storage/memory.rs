//! Objects in a map: fast tests and a base for fault injection.

use super::{validate_key, ObjectInfo, Storage, StorageError};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct MemoryStorage {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic elsewhere cannot leave the map half-updated, so a poisoned lock is usable.
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces an object's bytes, bypassing immutability: for damage tests only.
    pub fn tamper(&self, key: &str, f: impl FnOnce(&mut Vec<u8>)) {
        if let Some(v) = self.map().get_mut(key) {
            f(v)
        }
    }
}

impl Storage for MemoryStorage {
    fn location(&self) -> String {
        "memory".to_string()
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        let mut map = self.map();
        if map.contains_key(key) {
            return Err(StorageError::AlreadyExists(key.to_string()));
        }
        map.insert(key.to_string(), data.to_vec());
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        self.map()
            .get(key)
            .cloned()
            .ok_or_else(|| StorageError::NotFound(key.to_string()))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        Ok(self
            .map()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectInfo {
                key: k.clone(),
                size: v.len() as u64,
            })
            .collect())
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        self.map().remove(key);
        Ok(())
    }
}
