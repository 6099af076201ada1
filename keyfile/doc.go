// Package keyfile makes, reads and writes client keys as HelseID's own client
// libraries expect them: a private JWK with alg, use and kid (the RFC 7638
// thumbprint), and the public JWK to register. It also reads PEM private keys
// (PKCS #8, PKCS #1, SEC 1).
package keyfile
