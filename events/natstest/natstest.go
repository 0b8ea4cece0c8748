// Package natstest runs real nats-server instances with JetStream inside a test
// process: one server, or a cluster of three on loopback. Every server stores on the
// test's temporary directory and listens on a free loopback port, so tests run in
// parallel and never meet a server of the machine.
//
// StartCluster routes n such servers into one JetStream cluster (three is the
// smallest that survives losing a node) and returns once they have elected a meta
// leader, so R3 streams can be created at once. A test stops and restarts single
// nodes (Stop, Restart), finds or moves the leader of a stream (StreamLeader,
// LeadStream) and the node a client sits on (ClientNode), to take away exactly the
// node that matters; clients get every node's URL (URLs) and fail over.
package natstest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an embedded nats-server with JetStream, stopped when the test ends.
type Server struct {
	*server.Server
	t    testing.TB
	opts server.Options
}

// Start runs a JetStream server on 127.0.0.1 with a free port and a store under t.TempDir().
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, opts: server.Options{
		ServerName: "natstest",
		Host:       "127.0.0.1",
		Port:       freePort(t),
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoSigs:     true,
		NoLog:      true,
	}}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.opts // the server keeps and mutates its options
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("natstest: new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatalf("natstest: server not ready")
	}
	s.Server = srv
}

// URL is the client URL of the server; it stays the same across Restart.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// Stop shuts the server down and waits until it is gone. Stopping twice is harmless.
func (s *Server) Stop() {
	if s.Server == nil {
		return
	}
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
	s.Server = nil
}

// Restart stops the server and starts it again on the same port and store, as an
// operator restarting a node would: streams, consumers and their state survive.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Conn connects a client that reconnects forever and is closed when the test ends.
func (s *Server) Conn(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(s.URL(), opts...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection.
func (s *Server) JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(s.Conn(t))
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: reserve port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
