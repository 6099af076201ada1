// Package helseid is the wire vocabulary of the HelseID security profile
// shared by the token service, the client library and the API-side
// middleware: claim and scope names, organisation numbers and the
// Organization both sides name, national identity numbers (pids) and the
// structured assertion_details entries (helseid_authorization, SFM journal
// id).
package helseid
