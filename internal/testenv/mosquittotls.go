package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"
)

// MQTTSecureBroker is a Mosquitto with, besides its plain listener (URL),
// MQTT over TLS, over websockets and over websockets with TLS, all with a
// certificate for 127.0.0.1 that Roots trusts.
type MQTTSecureBroker struct {
	*MQTTBroker
	TLSURL string // mqtts://127.0.0.1:PORT
	WSURL  string // ws://127.0.0.1:PORT
	WSSURL string // wss://127.0.0.1:PORT
	Roots  *x509.CertPool
}

// MosquittoSecure starts a broker as Mosquitto does, with the TLS and
// websocket listeners of MQTTSecureBroker.
func MosquittoSecure(t testing.TB) *MQTTSecureBroker {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM, roots := SelfSigned(t)
	cert := WriteFile(t, dir, "cert.pem", string(certPEM))
	key := WriteFile(t, dir, "key.pem", string(keyPEM))
	tlsPort, wsPort, wssPort := FreePort(t), FreePort(t), FreePort(t)
	files := fmt.Sprintf("certfile %s\nkeyfile %s\n", cert, key)
	b := MosquittoWith(t, fmt.Sprintf("listener %d 127.0.0.1\n%s"+
		"listener %d 127.0.0.1\nprotocol websockets\n"+
		"listener %d 127.0.0.1\nprotocol websockets\n%s",
		tlsPort, files, wsPort, wssPort, files))
	// The process is ready once its plain listener is; wait for these too.
	for _, port := range []int{tlsPort, wsPort, wssPort} {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("mosquitto not listening on %s: %v\n%s", addr, err, b.Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return &MQTTSecureBroker{
		MQTTBroker: b,
		TLSURL:     fmt.Sprintf("mqtts://127.0.0.1:%d", tlsPort),
		WSURL:      fmt.Sprintf("ws://127.0.0.1:%d", wsPort),
		WSSURL:     fmt.Sprintf("wss://127.0.0.1:%d", wssPort),
		Roots:      roots,
	}
}

// SelfSigned makes a certificate for 127.0.0.1, PEM encoded, and a pool
// that trusts it: for test servers speaking TLS on loopback.
func SelfSigned(t testing.TB) (certPEM, keyPEM []byte, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(c)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), roots
}
