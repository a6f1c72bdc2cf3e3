package output

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/testenv"
)

func itoa(i int) string { return strconv.Itoa(i) }

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func TestNATSEndToEnd(t *testing.T) {
	srv := startServer(t, 0, t.TempDir(), nil)
	nc, err := nats.Connect(srvURL(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("tripline.alerts.>")
	if err != nil {
		t.Fatal(err)
	}
	// The server holds the subscription once it answers the flush: the
	// alerts below come on another connection and would not wait for it.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	n := runSink(t, NATSConfig{NATSConn: NATSConn{URL: srvURL(srv)}, CreateStream: true, DataDir: t.TempDir()})
	select {
	case <-n.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("not ready: %+v", n.Stats())
	}
	alerts := []*alert.Alert{testAlert(0), testAlert(1), alert.Internal(alert.RuleEventDrop, alert.PriorityDebug, "12 events lost", map[string]any{"n_drops": "12"})}
	alerts[1].Priority, alerts[1].Rule = alert.PriorityCritical, "Terminal shell in container"
	for _, a := range alerts {
		n.Publish(a)
	}
	wantSubj := []string{
		"tripline.alerts.warning.read_sensitive_file_untrusted",
		"tripline.alerts.critical.terminal_shell_in_container",
		"tripline.alerts.debug.tripline_internal_syscall_event_drop",
	}
	for i, a := range alerts {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("alert %d: %v (stats %+v)", i, err, n.Stats())
		}
		if m.Subject != wantSubj[i] {
			t.Errorf("subject %q, want %q", m.Subject, wantSubj[i])
		}
		if want := a.AppendJSON(nil); !bytes.Equal(m.Data, want) {
			t.Errorf("payload\n%s\nwant\n%s", m.Data, want)
		}
		if m.Header.Get("Nats-Msg-Id") != a.UUID {
			t.Errorf("Nats-Msg-Id %q", m.Header.Get("Nats-Msg-Id"))
		}
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return n.Stats().Published == 3 }, "published: %+v", n.Stats())
	// A replayed alert (same UUID) is dropped by JetStream's duplicate window.
	n.Publish(alerts[0])
	testenv.Eventually(t, 5*time.Second, func() bool { return n.Stats().Duplicates == 1 }, "dup: %+v", n.Stats())
	st := n.Stats()
	if !st.Connected || st.Spooled != 4 || st.SpoolPending != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
	readStream(t, srvURL(srv), DefaultStream, 3)
}

// The broker is down for outage while 1,000 distinct alerts are published;
// after a restart on the same port and store all arrive once, in order.
func TestNATSOutage(t *testing.T) {
	const outage = 10 * time.Second
	store := t.TempDir()
	srv := startServer(t, 0, store, nil)
	port := serverPort(srv)
	u := srvURL(srv)
	var errs errLog
	n := runSink(t, NATSConfig{NATSConn: NATSConn{URL: u}, CreateStream: true, DataDir: t.TempDir(), OnError: errs.add})
	<-n.Ready()
	for i := 0; i < 10; i++ {
		n.Publish(testAlert(i))
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return n.Stats().Published == 10 }, "warm-up: %+v", n.Stats())

	srv.Shutdown()
	srv.WaitForShutdown()
	down := time.Now()
	testenv.Eventually(t, 5*time.Second, func() bool { return !n.Stats().Connected }, "still connected")
	for i := 10; i < 1010; i++ {
		n.Publish(testAlert(i))
		if i%100 == 0 {
			time.Sleep(outage / 20) // spread the alerts over the outage
		}
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return n.Stats().Spooled == 1010 }, "spooled: %+v", n.Stats())
	if st := n.Stats(); st.Published != 10 || st.SpoolPending != 1000 || st.Dropped != 0 {
		t.Fatalf("during outage: %+v", st)
	}
	time.Sleep(time.Until(down.Add(outage)))

	srv2 := startServer(t, port, store, nil)
	testenv.Eventually(t, 20*time.Second, func() bool { return n.Stats().SpoolPending == 0 }, "not drained: %+v", n.Stats())
	checkInOrderOnce(t, readStream(t, srvURL(srv2), DefaultStream, 1010), 1010)
	if st := n.Stats(); st.Published+st.Duplicates < 1010 || st.Reconnects == 0 {
		t.Errorf("stats %+v", st)
	}
	if !errs.has("disconnected") && !errs.has("publish") {
		t.Errorf("outage not reported through OnError")
	}
}

const childEnv = "TRIPLINE_OUTPUT_CRASH_CHILD"

// TestMain runs the child half of TestNATSCrashRecovery when asked: it
// publishes 2,000 alerts, says so, and waits to be SIGKILLed.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		crashChild()
		return
	}
	os.Exit(m.Run())
}

func crashChild() {
	n, err := NewNATS(NATSConfig{NATSConn: NATSConn{URL: os.Getenv("CHILD_URL")}, CreateStream: true,
		DataDir: os.Getenv("CHILD_DIR"), SyncInterval: time.Hour, MaxInFlight: 16})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	go n.Run(context.Background())
	<-n.Ready()
	for i := 0; i < 2000; i++ {
		n.Publish(testAlert(i))
	}
	for n.Stats().Spooled < 2000 {
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("SPOOLED published=%d\n", n.Stats().Published)
	select {}
}

// The sink is SIGKILLed while alerts are spooled and partly delivered; a
// new sink on the same data dir delivers the rest, each exactly once.
func TestNATSCrashRecovery(t *testing.T) {
	srv := startServer(t, 0, t.TempDir(), nil)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_URL="+srvURL(srv), "CHILD_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "SPOOLED") {
				cmd.Process.Signal(syscall.SIGKILL)
				killed <- sc.Text()
				return
			}
		}
		killed <- ""
	}()
	var line string
	select {
	case line = <-killed:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("child never spooled")
	}
	cmd.Wait()
	if line == "" {
		t.Fatal("child exited without spooling")
	}
	t.Logf("child killed after %s", line)

	n := runSink(t, NATSConfig{NATSConn: NATSConn{URL: srvURL(srv)}, CreateStream: true, DataDir: dir})
	testenv.Eventually(t, 30*time.Second, func() bool { return n.Stats().SpoolPending == 0 }, "not drained: %+v", n.Stats())
	checkInOrderOnce(t, readStream(t, srvURL(srv), DefaultStream, 2000), 2000)
	t.Logf("after restart: %+v", n.Stats())
}

func TestNATSUnreachableKeepsSpooling(t *testing.T) {
	// A port nothing listens on: take one from a server and stop it.
	srv := startServer(t, 0, t.TempDir(), nil)
	u := srvURL(srv)
	srv.Shutdown()
	srv.WaitForShutdown()
	var errs errLog
	n := runSink(t, NATSConfig{NATSConn: NATSConn{URL: u}, CreateStream: true, DataDir: t.TempDir(), OnError: errs.add, MaxRetryWait: 100 * time.Millisecond})
	for i := 0; i < 5; i++ {
		n.Publish(testAlert(i))
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return n.Stats().Spooled == 5 && errs.has("no servers available") }, "no connection error reported")
	if st := n.Stats(); st.Connected || !containsFold(st.LastError, "connecting to NATS at "+u) {
		t.Errorf("stats %+v", st)
	}
}

func TestNATSBadConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  NATSConfig
		want string
	}{
		{"scheme", NATSConfig{NATSConn: NATSConn{URL: "http://x:4222"}, DataDir: dir}, "scheme"},
		{"no host", NATSConfig{NATSConn: NATSConn{URL: "nats://"}, DataDir: dir}, "no host"},
		{"two auths", NATSConfig{NATSConn: NATSConn{Token: "t", User: "u"}, DataDir: dir}, "one NATS authentication"},
		{"creds missing", NATSConfig{NATSConn: NATSConn{CredsFile: "/nonexistent.creds"}, DataDir: dir}, "creds file"},
		{"half cert", NATSConfig{NATSConn: NATSConn{CertFile: "/x"}, DataDir: dir}, "cert and a key"},
		{"no data dir", NATSConfig{}, "data directory"},
		{"template", NATSConfig{Subject: "a.<nope>", DataDir: dir}, "unknown placeholder"},
		{"prefix", NATSConfig{Subject: "<priority>.<rule>", CreateStream: true, DataDir: dir}, "literal token"},
	}
	for _, tt := range tests {
		_, err := NewNATS(tt.cfg)
		if err == nil || !containsFold(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	// The password never shows in messages.
	c := NATSConn{URL: "nats://bob:s3cret@127.0.0.1:1"}
	if strings.Contains(c.Redacted(), "s3cret") {
		t.Error(c.Redacted())
	}
}

func TestNATSMissingStreamNotCreated(t *testing.T) {
	srv := startServer(t, 0, t.TempDir(), nil)
	var errs errLog
	n := runSink(t, NATSConfig{NATSConn: NATSConn{URL: srvURL(srv)}, DataDir: t.TempDir(), OnError: errs.add, MaxRetryWait: 100 * time.Millisecond})
	n.Publish(testAlert(1))
	testenv.Eventually(t, 5*time.Second, func() bool { return errs.has("does not exist") }, "no error reported")
	if st := n.Stats(); st.SpoolPending != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestCloseWithoutRunKeepsAlertsSpooled(t *testing.T) {
	dir := t.TempDir()
	n, err := NewNATS(NATSConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		n.Publish(testAlert(i))
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n.Close()
	srv := startServer(t, 0, t.TempDir(), nil)
	runSink(t, NATSConfig{NATSConn: NATSConn{URL: srvURL(srv)}, CreateStream: true, DataDir: dir})
	checkInOrderOnce(t, readStream(t, srvURL(srv), DefaultStream, 3), 3)
}

func BenchmarkNATSSink(b *testing.B) {
	srv := startServer(b, 0, b.TempDir(), nil)
	n := runSink(b, NATSConfig{NATSConn: NATSConn{URL: srvURL(srv)}, CreateStream: true, DataDir: b.TempDir(), SpoolMaxBytes: 1 << 30})
	<-n.Ready()
	a := testAlert(1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		c := *a
		c.UUID = alert.NewUUID()
		n.Publish(&c)
	}
	for n.Stats().Published < uint64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "alerts/s")
}

// Alerts lost to a full spool are counted and reported as an internal
// alert that reaches the stream once the broker is back.
func TestSpoolOverflowReported(t *testing.T) {
	store := t.TempDir()
	srv := startServer(t, 0, store, nil)
	port := serverPort(srv)
	srv.Shutdown()
	srv.WaitForShutdown()
	n := runSink(t, NATSConfig{NATSConn: NATSConn{URL: fmt.Sprintf("nats://127.0.0.1:%d", port)}, CreateStream: true,
		DataDir: t.TempDir(), SpoolMaxBytes: 64 << 10, SyncInterval: 20 * time.Millisecond, MaxRetryWait: 100 * time.Millisecond})
	for i := 0; i < 400; i++ {
		a := testAlert(i)
		a.Priority = alert.PriorityDebug
		n.Publish(a)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return n.Stats().Spooled == 401 }, "no overflow report spooled")
	st := n.Stats()
	if st.Dropped == 0 || st.SpoolBytes > 64<<10 {
		t.Fatalf("stats %+v", st)
	}
	srv2 := startServer(t, port, store, nil)
	testenv.Eventually(t, 20*time.Second, func() bool { return n.Stats().SpoolPending == 0 }, "not drained: %+v", n.Stats())
	msgs := readStream(t, srvURL(srv2), DefaultStream, int(400-st.Dropped+1))
	last, err := alert.Parse(msgs[len(msgs)-1].Data())
	if err != nil {
		t.Fatal(err)
	}
	if last.Rule != alert.RuleSpoolDrop || last.Source != alert.SourceInternal || last.OutputFields["n_dropped"] != int64(st.Dropped) {
		t.Errorf("overflow alert %+v (dropped %d)", last, st.Dropped)
	}
	// The survivors are the newest ones, in order.
	first, _ := alert.Parse(msgs[0].Data())
	if want := testAlert(int(st.Dropped)).UUID; first.UUID != want {
		t.Errorf("oldest surviving alert %s, want %s", first.UUID, want)
	}
}

func TestHugeAlertIsShortened(t *testing.T) {
	srv := startServer(t, 0, t.TempDir(), nil)
	n := runSink(t, NATSConfig{NATSConn: NATSConn{URL: srvURL(srv)}, CreateStream: true, DataDir: t.TempDir()})
	a := testAlert(0)
	a.Output = strings.Repeat("A", 2<<20)
	a.OutputFields = map[string]any{"proc.cmdline": strings.Repeat("b", 2<<20), "n": 1}
	n.Publish(a)
	n.Publish(testAlert(1))
	msgs := readStream(t, srvURL(srv), DefaultStream, 2)
	got, err := alert.Parse(msgs[0].Data())
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs[0].Data()) > maxAlertJSON || !strings.HasSuffix(got.Output, "[...]") || got.OutputFields["n"] != int64(1) {
		t.Errorf("huge alert: %d bytes, output ends %q", len(msgs[0].Data()), got.Output[len(got.Output)-10:])
	}
}

// A broker that comes back with an empty store gets the stream recreated.
func TestNATSStreamRecreatedAfterStoreLoss(t *testing.T) {
	srv := startServer(t, 0, t.TempDir(), nil)
	port := serverPort(srv)
	n := runSink(t, NATSConfig{NATSConn: NATSConn{URL: srvURL(srv)}, CreateStream: true, DataDir: t.TempDir(), MaxRetryWait: 200 * time.Millisecond})
	n.Publish(testAlert(0))
	testenv.Eventually(t, 10*time.Second, func() bool { return n.Stats().Published == 1 }, "first alert")
	srv.Shutdown()
	srv.WaitForShutdown()
	srv2 := startServer(t, port, t.TempDir(), nil) // same port, fresh store
	n.Publish(testAlert(1))
	n.Publish(testAlert(2))
	msgs := readStream(t, srvURL(srv2), DefaultStream, 2)
	for i, m := range msgs {
		if want := testAlert(i + 1).UUID; m.Headers().Get("Nats-Msg-Id") != want {
			t.Errorf("message %d: %s, want %s", i, m.Headers().Get("Nats-Msg-Id"), want)
		}
	}
}
