"""The customer ledger: orders merged from any number of snapshots, and counters derived from them."""
