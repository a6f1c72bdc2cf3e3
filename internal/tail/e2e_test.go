package tail

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/broker"
	"github.com/tripline/tripline/internal/output"
	"github.com/tripline/tripline/internal/testenv"
)

// The sensor's whole delivery path: coalescer → NATS sink → embedded
// broker → tail.
func TestEmbeddedBrokerSinkTail(t *testing.T) {
	dataDir := t.TempDir()
	b, err := broker.New(broker.Config{Listen: "127.0.0.1:0", DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sink, err := output.NewNATS(output.NATSConfig{NATSConn: output.NATSConn{URL: b.ClientURL()}, CreateStream: true, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx) }()
	defer func() { sink.Close(); cancel(); <-done }()

	co := alert.NewCoalescer(alert.CoalesceConfig{}, sink.Publish)
	for i := 0; i < 1000; i++ { // a loop reading /etc/shadow: one alert, not 1,000
		co.Offer(alert.New(time.Now(), "Read sensitive file untrusted", alert.PriorityWarning,
			"Sensitive file opened for reading (file=/etc/shadow proc=\x1b[2Jcat)", map[string]any{"container.id": "host"}, []string{"filesystem"}))
	}
	co.Close() // flushes the follow-up with the count

	tl, out, _, stop := runTail(t, Config{Conn: output.NATSConn{URL: b.ClientURL()}, All: true})
	defer stop()
	<-tl.Ready()
	testenv.Eventually(t, 10*time.Second, func() bool { return out.lines() == 2 }, "tail saw %q", out)
	got := out.String()
	if !strings.Contains(got, `proc=\x1b[2Jcat)`) || !strings.Contains(got, "repeated 999 more times") || strings.Contains(got, "\x1b") {
		t.Errorf("tail output:\n%s", got)
	}
}
