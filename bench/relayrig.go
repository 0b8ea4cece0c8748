package bench

import (
	"context"
	"net/url"

	"github.com/nats-io/nats.go"
)

// relayRig is what the popup and broadcast scenarios share: the daemon, the bare
// relay of their baseline on the daemon's NATS server, a publisher, the baseline's
// frames and a user token for each connection.
type relayRig struct {
	d      *daemon
	bare   *child
	bareWS string // the bare relay's listen address
	nc     *nats.Conn
	frames *rawFrames
	tokens []string // query-escaped, for ?token=
}

// startRelayRig raises the file limit for the connections and starts everything;
// close stops it.
func (h *harness) startRelayRig(ctx context.Context, users int) (_ *relayRig, err error) {
	if _, _, err := raiseFileLimit(0); err != nil {
		return nil, err
	}
	r := &relayRig{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if r.d, err = h.startDaemon(ctx, "", nil); err != nil {
		return nil, err
	}
	var br bareReady
	if r.bare, err = h.startChild(ctx, &br, "bare-relay", "--nats", r.d.nats); err != nil {
		return nil, err
	}
	r.bareWS = br.Addr
	if r.nc, err = h.connect(r.d.nats, "bench-publisher"); err != nil {
		return nil, err
	}
	if r.frames, err = newRawFrames(); err != nil {
		return nil, err
	}
	r.tokens = make([]string, users)
	for i := range r.tokens {
		r.tokens[i] = url.QueryEscape(h.token(userName(i)))
	}
	return r, nil
}

func (r *relayRig) close() {
	if r.nc != nil {
		r.nc.Close()
	}
	if r.bare != nil {
		_ = r.bare.stop(nil)
	}
	if r.d != nil {
		r.d.stop()
	}
}
