//! The objects a fake holds (payments, orders), in creation order and found by id.

use std::collections::HashMap;

/// Objects in creation order, found by their id.
#[derive(Debug, Clone)]
pub struct Records<T> {
    items: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T> Default for Records<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> Records<T> {
    /// Adds an object under a new id (ids are made unique by the fake).
    pub fn insert(&mut self, id: String, item: T) {
        self.index.insert(id, self.items.len());
        self.items.push(item);
    }

    /// The object with this id.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.index.get(id).map(|&i| &self.items[i])
    }

    /// The object with this id, to change it.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.index.get(id).map(|&i| &mut self.items[i])
    }

    /// Every object, oldest first.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_their_order_and_are_found_by_id() {
        let mut r = Records::default();
        r.insert("b".into(), 2);
        r.insert("a".into(), 1);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), [2, 1]);
        *r.get_mut("a").unwrap() += 10;
        assert_eq!(r.get("a"), Some(&11));
        assert_eq!(r.get("c"), None);
    }
}
