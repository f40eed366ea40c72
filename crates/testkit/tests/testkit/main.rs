//! testkit's own tests, in one binary: `MemHantera` (`mem_hantera`), what only `MemStore`
//! has (`mem_store`), and the store's behaviour suite against `MemStore` (`store_suite`).

mod mem_hantera;
mod mem_store;
mod store_suite;
