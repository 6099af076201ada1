package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval bounds how often the certificate files are read again.
const certCheckInterval = 5 * time.Second

// maxCertFileSize bounds what is read of a certificate or key file.
const maxCertFileSize = 1 << 20

// certReloader serves the certificate in a pair of PEM files and picks up
// new ones without a restart, as certificates from an ACME client or a
// secret mount are replaced in place. At most every certCheckInterval, a
// handshake reads both files again; when their contents changed and load
// as a pair, the new certificate is used from then on. It compares
// contents rather than modification times: a file rewritten within the
// file system's time granularity, or restored with its old time, is still
// seen. A pair that does not load (one file written, the other not yet)
// keeps the old certificate and is tried again at the next check.
type certReloader struct {
	certFile, keyFile string
	now               func() time.Time
	log               *slog.Logger

	mu                sync.Mutex
	cert              *tls.Certificate
	certPEM, keyPEM   []byte
	checked           time.Time
	lastFailureLogged string
}

func newCertReloader(certFile, keyFile string, now func() time.Time, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, now: now, log: log}
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("server: tls: %s and %s: %w", certFile, keyFile, err)
	}
	r.cert, r.certPEM, r.keyPEM, r.checked = &cert, certPEM, keyPEM, now()
	return r, nil
}

func (r *certReloader) read() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = readLimited(r.certFile); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = readLimited(r.keyFile); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("server: tls: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCertFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("server: tls: %s: %w", name, err)
	}
	if len(data) > maxCertFileSize {
		return nil, fmt.Errorf("server: tls: %s is larger than %d bytes", name, maxCertFileSize)
	}
	return data, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= certCheckInterval || now.Before(r.checked) {
		r.checked = now
		r.reload()
	}
	return r.cert, nil
}

// reload reads the files and takes a changed pair that loads. The caller
// holds r.mu.
func (r *certReloader) reload() {
	certPEM, keyPEM, err := r.read()
	if err == nil && bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM) {
		return
	}
	var cert tls.Certificate
	if err == nil {
		cert, err = tls.X509KeyPair(certPEM, keyPEM)
	}
	if err != nil {
		// Logged once per distinct failure, not at every check.
		if msg := err.Error(); msg != r.lastFailureLogged {
			r.lastFailureLogged = msg
			r.log.Warn("tls: the changed certificate files do not load; serving the previous certificate", "cert_file", r.certFile, "key_file", r.keyFile, "err", err)
		}
		return
	}
	r.cert, r.certPEM, r.keyPEM, r.lastFailureLogged = &cert, certPEM, keyPEM, ""
	r.log.Info("tls: certificate reloaded", "cert_file", r.certFile, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
}

// tlsConfig is the server's TLS configuration: Go's defaults (its cipher
// suites and curves) with TLS 1.2 at least.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
	}
}
