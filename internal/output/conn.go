package output

import (
	"fmt"
	"github.com/spf13/pflag"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultNATSURL is the embedded broker's address.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// NATSConn says how to reach and authenticate to a NATS server; shared by
// the publisher and `sensor tail`.
type NATSConn struct {
	// URL is one or more comma-separated nats://, tls://, ws:// or wss://
	// server URLs. Default DefaultNATSURL.
	URL string
	// CAFile verifies the server certificate (PEM); CertFile and KeyFile
	// are the client certificate for mutual TLS.
	CAFile, CertFile, KeyFile string
	// At most one of: User+Password, Token, NKeySeedFile, CredsFile
	// (a .creds file with a user JWT and nkey seed, for operator mode).
	User, Password string
	Token          string
	NKeySeedFile   string
	CredsFile      string
	// Name is the client connection name. Default "tripline".
	Name string
}

// Redacted returns the URL with any password masked, for messages.
func (c NATSConn) Redacted() string {
	parts := strings.Split(c.urlOrDefault(), ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

func (c NATSConn) urlOrDefault() string {
	if c.URL == "" {
		return DefaultNATSURL
	}
	return c.URL
}

// Validate checks the URL and that the referenced files are readable.
func (c NATSConn) Validate() error {
	for _, p := range strings.Split(c.urlOrDefault(), ",") {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("%w: NATS URL %q: %v", ErrConfig, p, err)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("%w: NATS URL %q: scheme must be nats, tls, ws or wss", ErrConfig, u.Redacted())
		}
		if u.Host == "" {
			return fmt.Errorf("%w: NATS URL %q has no host", ErrConfig, u.Redacted())
		}
	}
	auth := 0
	for _, set := range []bool{c.User != "" || c.Password != "", c.Token != "", c.NKeySeedFile != "", c.CredsFile != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return fmt.Errorf("%w: choose one NATS authentication: user/password, token, nkey seed or creds file", ErrConfig)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("%w: a client certificate needs both a cert and a key file", ErrConfig)
	}
	for _, f := range []struct{ what, path string }{
		{"CA file", c.CAFile}, {"client certificate", c.CertFile}, {"client key", c.KeyFile},
		{"nkey seed file", c.NKeySeedFile}, {"creds file", c.CredsFile},
	} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			return fmt.Errorf("%w: NATS %s: %v", ErrConfig, f.what, err)
		}
		fh.Close()
	}
	return nil
}

// Connect validates c and connects once. The connection then reconnects
// forever with backoff from 250ms to 2s (reconnect buffer disabled, so publishes fail fast
// while disconnected instead of piling up in memory); extra options are
// applied last.
func (c NATSConn) Connect(extra ...nats.Option) (*nats.Conn, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	name := c.Name
	if name == "" {
		name = "tripline"
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(backoff(250*time.Millisecond, 2*time.Second)),
		nats.ReconnectBufSize(-1),
		nats.IgnoreAuthErrorAbort(),
		nats.Timeout(5 * time.Second),
		nats.NoCallbacksAfterClientClose(),
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" {
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	switch {
	case c.User != "" || c.Password != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%w: NATS nkey seed file: %v", ErrConfig, err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	opts = append(opts, extra...)
	nc, err := nats.Connect(c.urlOrDefault(), opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", c.Redacted(), err)
	}
	return nc, nil
}

// backoff doubles the delay per attempt from first up to max.
func backoff(first, maxWait time.Duration) func(attempts int) time.Duration {
	return func(attempts int) time.Duration {
		d := first
		for i := 1; i < attempts && d < maxWait; i++ {
			d *= 2
		}
		d = min(d, maxWait)
		return d + rand.N(d/4+1) // jitter: a fleet of sensors does not reconnect in lockstep
	}
}

// RegisterFlags binds the connection flags (--nats-url, --nats-ca, …) to c,
// with c's current values as defaults; `sensor run` and `sensor tail` share
// them. Call FromEnv after parsing.
func (c *NATSConn) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.URL, "nats-url", c.URL, "NATS server URL(s), comma-separated (nats://, tls://)")
	fs.StringVar(&c.CAFile, "nats-ca", c.CAFile, "CA certificate (PEM) to verify the NATS server")
	fs.StringVar(&c.CertFile, "nats-cert", c.CertFile, "client certificate (PEM) for mutual TLS")
	fs.StringVar(&c.KeyFile, "nats-key", c.KeyFile, "client key (PEM) for mutual TLS")
	fs.StringVar(&c.User, "nats-user", c.User, "NATS user name")
	fs.StringVar(&c.Password, "nats-password", c.Password, "NATS password (or $TRIPLINE_NATS_PASSWORD, which keeps it out of the process list)")
	fs.StringVar(&c.Token, "nats-token", c.Token, "NATS token (or $TRIPLINE_NATS_TOKEN)")
	fs.StringVar(&c.NKeySeedFile, "nats-nkey", c.NKeySeedFile, "NATS nkey seed file")
	fs.StringVar(&c.CredsFile, "nats-creds", c.CredsFile, "NATS .creds file (user JWT + seed, operator mode)")
}

// FromEnv fills secrets not given as flags from the environment.
func (c *NATSConn) FromEnv() {
	if c.Password == "" {
		c.Password = os.Getenv("TRIPLINE_NATS_PASSWORD")
	}
	if c.Token == "" {
		c.Token = os.Getenv("TRIPLINE_NATS_TOKEN")
	}
}
