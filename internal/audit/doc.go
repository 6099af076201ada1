// Package audit keeps the audit log tamper-evident, and what a caller
// without a client's key can make the server write to it bounded
// (Refusals). Every token issued and every refusal of an authenticated
// client is one store.AuditRecord; each server instance writes its own
// chain, in which every record carries the MAC of the one before it and
// its own MAC over both. The MAC key is derived from the key-encryption
// key, which the store never holds: someone who can change the database
// but does not have that key cannot change, remove or add a record without
// Verify noticing. The store also keeps each chain's head (last sequence
// number and MAC) in the same transaction as every append, so a log cut
// off at the end is noticed too.
//
// What this cannot catch: someone who changes the database AND holds the
// key-encryption key, or who rolls the whole database back to an earlier
// copy. The server therefore also logs the chain heads (see Heads) to its
// own log, which lives elsewhere; `tillit audit verify --head` checks the
// store against such a line.
package audit
