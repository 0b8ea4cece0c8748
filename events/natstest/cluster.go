package natstest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterTimeout bounds every wait of a Cluster: forming, electing a leader, moving
// one. Elections take seconds (nats-server's election timeout is 4 to 9 s), and CI
// machines with two cores under -race take several times that.
const ClusterTimeout = 60 * time.Second

// Cluster is n JetStream servers routed into one cluster on loopback, stopped when
// the test ends. Nodes are numbered from 0; a stopped node keeps its ports and its
// store, so Restart brings back the same node.
type Cluster struct {
	t     testing.TB
	nodes []*Server
}

// StartCluster runs n JetStream servers on 127.0.0.1, each with its own name, client
// and route port and store under t.TempDir(), all routed to each other, and waits
// until every node is current with an elected JetStream meta leader: an R3 stream
// can be created as soon as it returns.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: a cluster of %d nodes", n)
	}
	routePorts := make([]int, n)
	for i := range routePorts {
		routePorts[i] = freePort(t)
	}
	c := &Cluster{t: t, nodes: make([]*Server, n)}
	for i := range c.nodes {
		// Every node gets the same route list, itself included (a server ignores the
		// route to itself), each its own copy: a server keeps its options.
		routes := make([]*url.URL, n)
		for j, p := range routePorts {
			routes[j] = &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))}
		}
		c.nodes[i] = &Server{t: t, opts: server.Options{
			ServerName: fmt.Sprintf("natstest-%d", i),
			Host:       "127.0.0.1",
			Port:       freePort(t),
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "natstest", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     routes,
			NoSigs:     true,
			NoLog:      true,
		}}
	}
	t.Cleanup(func() {
		for _, s := range c.nodes {
			s.Stop()
		}
	})
	for _, s := range c.nodes {
		s.start()
	}
	c.WaitReady()
	return c
}

// Len is the number of nodes, running or stopped.
func (c *Cluster) Len() int { return len(c.nodes) }

// Node is node i. Its Server field is nil while the node is stopped.
func (c *Cluster) Node(i int) *Server { return c.nodes[i] }

// URLs is the client URL of every node, comma-separated, as NATS_URL takes them: a
// client connected with it fails over to another node when its own stops.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// Stop shuts node i down and waits until it is gone. The server steps down from the
// Raft groups it leads on the way out, so the others elect new leaders without
// waiting for an election timeout. Stopping a stopped node is harmless.
func (c *Cluster) Stop(i int) { c.nodes[i].Stop() }

// Restart starts node i again on its ports and store, as an operator restarting a
// machine would, and waits until it has rejoined and caught up with the meta group.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.nodes[i].Restart()
	c.WaitReady()
}

// WaitReady waits until the running nodes have a meta leader that counts each of them
// as a peer and every running node is current with it.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	c.waitFor("a JetStream meta leader with every running node current", func() bool {
		leader := c.MetaLeader()
		if leader < 0 {
			return false
		}
		running := 0
		for _, s := range c.nodes {
			if s.Server == nil {
				continue
			}
			running++
			if !s.Server.JetStreamIsCurrent() {
				return false
			}
		}
		return len(c.nodes[leader].Server.JetStreamClusterPeers()) == running
	})
}

// MetaLeader is the index of the running node that leads the JetStream meta group,
// -1 while there is none.
func (c *Cluster) MetaLeader() int {
	for i, s := range c.nodes {
		if s.Server != nil && s.Server.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// StreamLeader is the index of the running node that leads stream (of the global
// account, where clients without credentials live), -1 while there is none.
func (c *Cluster) StreamLeader(stream string) int {
	for i, s := range c.nodes {
		if s.Server != nil && s.Server.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// WaitStreamLeader waits until a running node leads stream and returns its index.
func (c *Cluster) WaitStreamLeader(stream string) int {
	c.t.Helper()
	leader := -1
	c.waitFor("a leader of stream "+stream, func() bool {
		leader = c.StreamLeader(stream)
		return leader >= 0
	})
	return leader
}

// LeadStream makes node i the leader of stream: the current leader steps down in its
// favour (the preferred placement of a stream leader step-down). It returns once
// node i leads.
func (c *Cluster) LeadStream(stream string, i int) {
	c.t.Helper()
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		c.t.Fatalf("natstest: connect: %v", err)
	}
	defer nc.Close()
	req, err := json.Marshal(map[string]any{"placement": map[string]string{"preferred": c.nodes[i].opts.ServerName}})
	if err != nil {
		c.t.Fatalf("natstest: step-down request: %v", err)
	}
	var lastErr error
	c.waitFor(fmt.Sprintf("node %d to lead stream %s", i, stream), func() bool {
		switch c.StreamLeader(stream) {
		case i:
			return true
		case -1:
			return false // an election is under way
		}
		// The preferred node may still be catching up, and a step-down in flight
		// answers nothing useful: ask again until it leads.
		reply, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, 5*time.Second)
		if err != nil {
			lastErr = err
			return false
		}
		var resp struct {
			Error *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(reply.Data, &resp); err != nil {
			lastErr = err
		} else if resp.Error != nil {
			lastErr = resp.Error
		}
		return c.StreamLeader(stream) == i
	}, func() string { return fmt.Sprintf("last step-down error: %v", lastErr) })
}

// ClientNode is the index of the running node a client connection named name (the
// nats.Name option) is connected to, -1 when none is. It finds where another
// component's connection sits, such as a daemon's, to stop exactly that node.
func (c *Cluster) ClientNode(name string) int {
	c.t.Helper()
	for i, s := range c.nodes {
		if s.Server == nil {
			continue
		}
		connz, err := s.Server.Connz(&server.ConnzOptions{Limit: 1 << 16})
		if err != nil {
			c.t.Fatalf("natstest: connz of node %d: %v", i, err)
		}
		for _, ci := range connz.Conns {
			if ci.Name == name {
				return i
			}
		}
	}
	return -1
}

// Conn connects a client to every node, reconnecting forever to whichever runs, and
// closes it when the test ends.
func (c *Cluster) Conn(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(c.URLs(), opts...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection to the cluster.
func (c *Cluster) JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(c.Conn(t))
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

// waitFor polls cond until it holds, failing the test after ClusterTimeout. detail,
// when given, adds to the failure what the last attempt saw.
func (c *Cluster) waitFor(what string, cond func() bool, detail ...func() string) {
	c.t.Helper()
	deadline := time.NewTimer(ClusterTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			msg := "natstest: waited " + ClusterTimeout.String() + " for " + what
			for _, d := range detail {
				msg += "; " + d()
			}
			c.t.Fatal(msg)
		case <-tick.C:
		}
	}
}
