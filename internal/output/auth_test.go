package output

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/tripline/tripline/internal/testenv"
)

type pki struct {
	caFile, certFile, keyFile string
	serverTLS                 *tls.Config
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newPKI creates a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA.
func newPKI(t *testing.T, dir string) pki {
	t.Helper()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tripline test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return k, der
	}
	sKey, sDER := leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	cKey, cDER := leaf(3, "sensor", x509.ExtKeyUsageClientAuth)
	p := pki{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "client.pem"), keyFile: filepath.Join(dir, "client-key.pem")}
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	writePEM(t, p.certFile, "CERTIFICATE", cDER)
	ckDER, _ := x509.MarshalECPrivateKey(cKey)
	writePEM(t, p.keyFile, "EC PRIVATE KEY", ckDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	p.serverTLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{sDER}, PrivateKey: sKey}},
		ClientCAs:    pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}
	return p
}

type operator struct {
	claims  *jwt.OperatorClaims
	kp      nkeys.KeyPair
	account nkeys.KeyPair
	sysPub  string
	res     *server.MemAccResolver
}

// newOperator builds an operator with a system account and one
// JetStream-enabled account, kept in a memory resolver.
func newOperator(t *testing.T) *operator {
	t.Helper()
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	ojwt, err := oc.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := jwt.DecodeOperatorClaims(ojwt)
	if err != nil {
		t.Fatal(err)
	}
	o := &operator{claims: claims, kp: okp, res: &server.MemAccResolver{}}
	account := func(js bool) (nkeys.KeyPair, string) {
		akp, _ := nkeys.CreateAccount()
		apub, _ := akp.PublicKey()
		ac := jwt.NewAccountClaims(apub)
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		ajwt, err := ac.Encode(okp)
		if err != nil {
			t.Fatal(err)
		}
		o.res.Store(apub, ajwt)
		return akp, apub
	}
	_, o.sysPub = account(false)
	o.account, _ = account(true)
	return o
}

// creds writes a .creds file for a new user of account signer.
func creds(t *testing.T, path string, signer nkeys.KeyPair) string {
	t.Helper()
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	seed, _ := ukp.Seed()
	ujwt, err := jwt.NewUserClaims(upub).Encode(signer)
	if err != nil {
		t.Fatal(err)
	}
	b, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNATSTLSAndCreds(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir)
	op := newOperator(t)
	srv := startServer(t, 0, t.TempDir(), func(o *server.Options) {
		o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = p.serverTLS, true, true, 5
		o.TrustedOperators = []*jwt.OperatorClaims{op.claims}
		o.AccountResolver = op.res
		o.SystemAccount = op.sysPub
	})
	u := "tls://127.0.0.1:" + itoa(serverPort(srv))
	good := NATSConn{URL: u, CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile,
		CredsFile: creds(t, filepath.Join(dir, "sensor.creds"), op.account)}

	n := runSink(t, NATSConfig{NATSConn: good, CreateStream: true, DataDir: t.TempDir()})
	select {
	case <-n.Ready():
	case <-time.After(15 * time.Second):
		t.Fatalf("not ready over TLS+creds: %+v", n.Stats())
	}
	n.Publish(testAlert(0))
	testenv.Eventually(t, 10*time.Second, func() bool { return n.Stats().Published == 1 }, "not published")

	// Bad credentials: a user of an account the operator never signed.
	rogue, _ := nkeys.CreateAccount()
	bad := good
	bad.CredsFile = creds(t, filepath.Join(dir, "rogue.creds"), rogue)
	var errs errLog
	nb := runSink(t, NATSConfig{NATSConn: bad, CreateStream: true, DataDir: t.TempDir(), OnError: errs.add, MaxRetryWait: 100 * time.Millisecond})
	nb.Publish(testAlert(1))
	testenv.Eventually(t, 10*time.Second, func() bool { return errs.has("authorization violation") }, "bad creds not reported")
	if st := nb.Stats(); st.Connected || st.Spooled != 1 || st.SpoolPending != 1 {
		t.Errorf("bad creds: %+v", st)
	}
	// No client certificate: the TLS handshake fails with a clear error.
	nocert := good
	nocert.CertFile, nocert.KeyFile = "", ""
	if _, err := nocert.Connect(); err == nil {
		t.Error("connected without a client certificate")
	} else {
		t.Logf("without client cert: %v", err)
	}
	// Wrong CA.
	other := newPKI(t, t.TempDir())
	wrongCA := good
	wrongCA.CAFile = other.caFile
	if _, err := wrongCA.Connect(); err == nil || !containsFold(err.Error(), "certificate") {
		t.Errorf("wrong CA: %v", err)
	}
}

func TestNATSUserPasswordTokenNKey(t *testing.T) {
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	seed, _ := ukp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	os.WriteFile(seedFile, seed, 0o600)
	srv := startServer(t, 0, t.TempDir(), func(o *server.Options) {
		o.Users = []*server.User{{Username: "bob", Password: "s3cret"}}
		o.Nkeys = []*server.NkeyUser{{Nkey: upub}}
	})
	u := srvURL(srv)
	for name, c := range map[string]NATSConn{
		"user/password": {URL: u, User: "bob", Password: "s3cret"},
		"nkey":          {URL: u, NKeySeedFile: seedFile},
	} {
		nc, err := c.Connect()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		nc.Close()
	}
	_, err := NATSConn{URL: u, User: "bob", Password: "wrong"}.Connect()
	if err == nil || !containsFold(err.Error(), "authorization violation") {
		t.Errorf("wrong password: %v", err)
	}
	tsrv := startServer(t, 0, t.TempDir(), func(o *server.Options) { o.Authorization = "tok" })
	if nc, err := (NATSConn{URL: srvURL(tsrv), Token: "tok"}).Connect(); err != nil {
		t.Errorf("token: %v", err)
	} else {
		nc.Close()
	}
}
