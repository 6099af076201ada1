// Package loadtest drives a token endpoint over HTTP the way HelseID
// clients do, to measure how many tokens per second it issues and what each
// costs in CPU on both sides.
//
// Every token request carries a new client assertion and, unless Bearer, a
// new DPoP proof; the generator keeps the last DPoP-Nonce the server sent
// and makes the use_dpop_nonce round trip when asked, counting it. With
// FreshNonce it never reuses a nonce, as NHN's libraries do, so every token
// costs that round trip.
//
// The generator's own CPU is measured (getrusage) and reported per token,
// next to the server's (/proc/PID/stat) and the machine's (/proc/stat): on
// a small machine the client-side signing is a real share of the work, and
// a figure without it would flatter whichever server shares the machine
// with the cheaper generator. For the same reason the generator signs with
// a header encoded once (jws.go) and speaks HTTP/1.1 on its connections
// itself (conn.go); both say what they save.
package loadtest
