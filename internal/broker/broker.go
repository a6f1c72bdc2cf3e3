package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultListen is the embedded server's default address (loopback only).
const DefaultListen = "127.0.0.1:4222"

// Errors.
var (
	ErrConfig   = errors.New("broker: invalid config")
	ErrNotReady = errors.New("broker: server did not become ready")
)

// Config configures the embedded server.
type Config struct {
	// Listen is host:port for clients. Default DefaultListen; port 0 picks a
	// free port (see ClientURL).
	Listen string
	// DataDir is the sensor data directory; JetStream stores its files in
	// DataDir/jetstream. Required.
	DataDir string
	// MaxStore bounds JetStream file storage in bytes. Default 1 GiB.
	MaxStore int64
	// MaxMemory bounds JetStream memory storage in bytes. Default 64 MiB.
	MaxMemory int64
	// ServerName names the server (and its JetStream domain node). Default "tripline".
	ServerName string
	// ReadyTimeout bounds Start's wait for the listener. Default 10s.
	ReadyTimeout time.Duration
}

// Broker is an embedded NATS server with JetStream.
type Broker struct {
	cfg   Config
	srv   *server.Server
	ready chan struct{}

	mu      sync.Mutex
	started bool
	closed  bool
}

// New validates cfg and prepares the server.
func New(cfg Config) (*Broker, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: DataDir is required", ErrConfig)
	}
	if cfg.MaxStore <= 0 {
		cfg.MaxStore = 1 << 30
	}
	if cfg.MaxMemory <= 0 {
		cfg.MaxMemory = 64 << 20
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "tripline"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: listen address %q: %v", ErrConfig, cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w: listen port %q", ErrConfig, portStr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	opts := &server.Options{
		ServerName:         cfg.ServerName,
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           filepath.Clean(cfg.DataDir),
		JetStreamMaxStore:  cfg.MaxStore,
		JetStreamMaxMemory: cfg.MaxMemory,
		NoSigs:             true,
		NoLog:              true,
		MaxPayload:         1 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return &Broker{cfg: cfg, srv: srv, ready: make(chan struct{})}, nil
}

// Start starts the server and waits until it accepts clients.
func (b *Broker) Start() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("broker: closed")
	}
	if b.started {
		b.mu.Unlock()
		<-b.ready
		return nil
	}
	b.started = true
	b.mu.Unlock()
	go b.srv.Start()
	if !b.srv.ReadyForConnections(b.cfg.ReadyTimeout) {
		b.srv.Shutdown()
		return fmt.Errorf("%w on %s within %v (port in use?)", ErrNotReady, b.cfg.Listen, b.cfg.ReadyTimeout)
	}
	if !b.srv.JetStreamEnabled() {
		b.srv.Shutdown()
		return fmt.Errorf("%w: JetStream failed to start (store %s)", ErrNotReady, b.cfg.DataDir)
	}
	close(b.ready)
	return nil
}

// Run starts the server, serves until ctx ends, then shuts it down.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return b.Close()
}

// Ready is closed once the server accepts clients.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

// ClientURL is the nats:// URL clients (publisher, tail) connect to; valid
// after Start.
func (b *Broker) ClientURL() string {
	u := b.srv.ClientURL()
	if h, p, err := net.SplitHostPort(u[len("nats://"):]); err == nil && (h == "0.0.0.0" || h == "::") {
		u = "nats://" + net.JoinHostPort("127.0.0.1", p)
	}
	return u
}

// Close shuts the server down and waits for it. Idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	started := b.started
	b.mu.Unlock()
	if started {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	return nil
}
