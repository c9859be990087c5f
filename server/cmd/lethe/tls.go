package main

import "crypto/tls"

// TLSConfig serves cert over TLS 1.2+ with AEAD cipher suites only.
//
// Go decides the preference, not this list (its order is ignored): of the
// suites both ends have, AES-128-GCM, then AES-256-GCM, then
// ChaCha20-Poly1305 (ChaCha20 first when the client lacks AES hardware).
// TLS 1.3 suites are not configurable at all (Config.CipherSuites applies to
// 1.2 and below): a TLS 1.3 handshake negotiates one of the same three. So
// the only honest way to require AES-256-GCM (aes256Only) is to stop at TLS
// 1.2 and offer only its AES-256-GCM suites.
func TLSConfig(cert tls.Certificate, aes256Only bool) *tls.Config {
	if !aes256Only {
		return &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
				tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			},
		}
	}
	strict := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	// net/http refuses to serve HTTP/2 from a config whose CipherSuites
	// lack AES-128-GCM (RFC 9113 makes it the suite every HTTP/2 client
	// has). Every current browser and gRPC client also has AES-256-GCM, and
	// requiring it is the operator's choice, so the strict config is handed
	// out per connection, where that check does not look.
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		MaxVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{cert},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return strict, nil },
	}
}
