package deploy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	corev1 "k8s.io/api/core/v1"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/output"
	"github.com/tripline/tripline/internal/tail"
)

// The NATS permissions docs/deployment.md tells operators to give the two
// kinds of users (as `nsc add user --allow-pub/--allow-sub` lists). The test
// below proves they are enough for the sensor to create the stream and
// publish, and for an analyst to follow it with `sensor tail`, and that the
// sensor user cannot read alerts.
var (
	sensorPub = []string{
		"tripline.alerts.>",
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO.TRIPLINE_ALERTS",
		"$JS.API.STREAM.CREATE.TRIPLINE_ALERTS",
		"$JS.API.STREAM.UPDATE.TRIPLINE_ALERTS",
	}
	sensorSub  = []string{"_INBOX.>"}
	analystPub = []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO.TRIPLINE_ALERTS",
		"$JS.API.CONSUMER.CREATE.TRIPLINE_ALERTS.>",
		"$JS.API.CONSUMER.INFO.TRIPLINE_ALERTS.>",
		"$JS.API.CONSUMER.DELETE.TRIPLINE_ALERTS.>",
		"$JS.API.CONSUMER.MSG.NEXT.TRIPLINE_ALERTS.>",
		"$JS.ACK.TRIPLINE_ALERTS.>",
		"$JS.FC.>",
	}
	analystSub = []string{"_INBOX.>"}
)

// TestNATSConfig loads the example cluster's nats.conf with nats-server's own
// parser (with generated operator JWTs in place of the nats-auth Secret and a
// generated certificate in place of nats-tls), then starts it as a single
// node on loopback and exercises the documented user permissions over TLS
// with the sensor's real NATS output and the real `sensor tail` code.
func TestNATSConfig(t *testing.T) {
	dir := t.TempDir()
	conf := natsConfigMap(t)

	tlsDir := filepath.Join(dir, "tls")
	writeTestPKI(t, tlsDir)
	conf = strings.ReplaceAll(conf, "/etc/nats/tls/", tlsDir+"/")
	conf = strings.ReplaceAll(conf, "/data/jetstream", filepath.Join(dir, "jetstream"))
	if strings.Contains(conf, "/etc/nats") || strings.Contains(conf, "/data/") {
		t.Fatalf("nats.conf has a path this test does not redirect:\n%s", conf)
	}
	confPath := filepath.Join(dir, "nats.conf")
	writeFile(t, confPath, conf, 0o600)

	auth := newNATSAuth(t)
	writeFile(t, filepath.Join(dir, "auth", "resolver.conf"), auth.resolverConf, 0o600)

	t.Setenv("SERVER_NAME", "nats-0")
	opts, err := server.ProcessConfigFile(confPath)
	if err != nil {
		t.Fatalf("nats-server rejects nats.conf: %v", err)
	}
	if opts.ServerName != "nats-0" || !opts.JetStream || opts.Cluster.Name != "tripline" || len(opts.Routes) != 3 || opts.TLSConfig == nil {
		t.Fatalf("nats.conf parsed to unexpected options: name=%q js=%v cluster=%q routes=%d tls=%v",
			opts.ServerName, opts.JetStream, opts.Cluster.Name, len(opts.Routes), opts.TLSConfig != nil)
	}

	// One node on loopback: no cluster (its routes name hosts this test must
	// not resolve), random ports.
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
	opts.Cluster = server.ClusterOpts{}
	opts.Routes = nil
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("starting nats-server with nats.conf: %v", err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	url := fmt.Sprintf("tls://localhost:%d", s.Addr().(*net.TCPAddr).Port)
	ca := filepath.Join(tlsDir, "ca.crt")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Plain-text and unauthenticated clients are refused.
	if nc, err := nats.Connect(strings.Replace(url, "tls://", "nats://", 1), nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Error("connected without TLS")
	}
	if nc, err := nats.Connect(url, nats.RootCAs(ca), nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Error("connected without credentials")
	}

	connect := func(creds string, errs chan<- error) *nats.Conn {
		t.Helper()
		nc, err := nats.Connect(url, nats.UserCredentials(creds), nats.RootCAs(ca), nats.Timeout(5*time.Second),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				select {
				case errs <- err:
				default:
				}
			}))
		if err != nil {
			t.Fatalf("connecting with %s: %v", filepath.Base(creds), err)
		}
		t.Cleanup(nc.Close)
		return nc
	}

	// The sensor's real output sink, with the documented sensor permissions:
	// it must create the stream and get its alert acknowledged.
	sensorCreds := auth.userCreds(t, dir, "sensor", sensorPub, sensorSub)
	var lastErr lockedBuffer
	sink, err := output.NewNATS(output.NATSConfig{
		NATSConn:     output.NATSConn{URL: url, CAFile: ca, CredsFile: sensorCreds},
		CreateStream: true,
		DataDir:      filepath.Join(dir, "sensor-data"),
		OnError:      func(err error) { lastErr.Set(err.Error()) },
	})
	if err != nil {
		t.Fatalf("output.NewNATS: %v", err)
	}
	sinkDone := make(chan error, 1)
	go func() { sinkDone <- sink.Run(ctx) }()
	t.Cleanup(func() {
		sink.Close()
		cancel()
		<-sinkDone
	})
	sink.Publish(alert.New(time.Now(), "Deploy test rule", alert.PriorityWarning, "deploy test alert", nil, nil))
	for sink.Stats().Published == 0 {
		if ctx.Err() != nil {
			t.Fatalf("the sensor's NATS output never got an ack with the documented permissions; last error: %s", lastErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The sensor user may not read alerts (a compromised node must not read
	// other nodes' alerts) nor publish outside tripline.alerts.>.
	sensorErrs := make(chan error, 8)
	sensor := connect(sensorCreds, sensorErrs)
	if _, err := sensor.SubscribeSync("tripline.alerts.>"); err != nil {
		t.Fatal(err)
	}
	if err := sensor.Publish("elsewhere", nil); err != nil {
		t.Fatal(err)
	}
	if err := sensor.Flush(); err != nil {
		t.Fatal(err)
	}
	for want := 2; want > 0; want-- {
		select {
		case err := <-sensorErrs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("sensor user: unexpected async error %v", err)
			}
		case <-ctx.Done():
			t.Fatal("sensor user was allowed to subscribe to alerts or publish outside tripline.alerts.>")
		}
	}

	// An analyst runs `sensor tail --all --json` (the real tail code) with the
	// documented analyst permissions and sees the alert.
	analystCreds := auth.userCreds(t, dir, "analyst", analystPub, analystSub)
	var out, status lockedBuffer
	tl, err := tail.New(tail.Config{
		Conn: output.NATSConn{URL: url, CAFile: ca, CredsFile: analystCreds},
		All:  true, JSON: true, Out: &out, Status: &status, RetryWait: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("tail.New: %v", err)
	}
	tailCtx, stopTail := context.WithCancel(ctx)
	tailDone := make(chan error, 1)
	go func() { tailDone <- tl.Run(tailCtx) }()
	for !strings.Contains(out.String(), "Deploy test rule") {
		if ctx.Err() != nil {
			t.Fatalf("sensor tail with the documented analyst permissions showed nothing; status:\n%s", status.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopTail()
	<-tailDone
}

// lockedBuffer is an io.Writer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Set(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// natsConfigMap returns nats.conf from the nats-config ConfigMap.
func natsConfigMap(t *testing.T) string {
	t.Helper()
	for _, m := range loadManifests(t) {
		if cm, ok := m.Obj.(*corev1.ConfigMap); ok && cm.Name == "nats-config" {
			if c, ok := cm.Data["nats.conf"]; ok {
				return c
			}
		}
	}
	t.Fatal("no nats.conf in the nats-config ConfigMap")
	return ""
}

// natsAuth is an operator, its system account and a TRIPLINE account with
// JetStream, like `nsc` creates them.
type natsAuth struct {
	account      nkeys.KeyPair
	resolverConf string
}

func newNATSAuth(t *testing.T) *natsAuth {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	op, err := nkeys.CreateOperator()
	must(err)
	opPub, err := op.PublicKey()
	must(err)
	sys, err := nkeys.CreateAccount()
	must(err)
	sysPub, err := sys.PublicKey()
	must(err)
	acc, err := nkeys.CreateAccount()
	must(err)
	accPub, err := acc.PublicKey()
	must(err)

	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "tripline-operator"
	oc.SystemAccount = sysPub
	opJWT, err := oc.Encode(op)
	must(err)
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	sysJWT, err := sc.Encode(op)
	must(err)
	ac := jwt.NewAccountClaims(accPub)
	ac.Name = "TRIPLINE"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{DiskStorage: 1 << 30, MemoryStorage: 0, Streams: 10, Consumer: 100}
	accJWT, err := ac.Encode(op)
	must(err)

	conf := fmt.Sprintf("operator: %s\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n  %s: %s\n  %s: %s\n}\n",
		opJWT, sysPub, sysPub, sysJWT, accPub, accJWT)
	return &natsAuth{account: acc, resolverConf: conf}
}

// userCreds writes a .creds file for a user of the TRIPLINE account with the
// given permissions and returns its path.
func (a *natsAuth) userCreds(t *testing.T, dir, name string, pub, sub []string) string {
	t.Helper()
	u, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	upub, _ := u.PublicKey()
	seed, _ := u.Seed()
	uc := jwt.NewUserClaims(upub)
	uc.Name = name
	uc.Pub.Allow.Add(pub...)
	uc.Sub.Allow.Add(sub...)
	ujwt, err := uc.Encode(a.account)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".creds")
	writeFile(t, p, string(creds), 0o600)
	return p
}

// writeTestPKI writes ca.crt, tls.crt and tls.key for a server reachable as
// localhost and under the example cluster's service names.
func writeTestPKI(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tripline test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	caCert, err := x509.ParseCertificate(caDER)
	must(err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "nats"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost", "nats.tripline-nats.svc", "*.nats-cluster.tripline-nats.svc.cluster.local"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	must(err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	must(err)
	pemOf := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	writeFile(t, filepath.Join(dir, "ca.crt"), pemOf("CERTIFICATE", caDER), 0o644)
	writeFile(t, filepath.Join(dir, "tls.crt"), pemOf("CERTIFICATE", der), 0o644)
	writeFile(t, filepath.Join(dir, "tls.key"), pemOf("EC PRIVATE KEY", keyDER), 0o600)
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}
