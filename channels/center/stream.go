package center

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// The stream's API the center speaks itself, for what nats.go's jetstream package
// does not offer: a batch of messages in one direct get (a page), the leader's view
// of one message, and a delete whose "already gone" is not an error.
//
// The server's direct get answers a batch request (JSApiMsgGetRequest with batch,
// nats-server jetstream_api.go) with one message per stored message and an
// end-of-batch status.

// directGetRequest is the server's JSApiMsgGetRequest, the fields the center uses.
type directGetRequest struct {
	Seq        uint64 `json:"seq"`
	NextBySubj string `json:"next_by_subj"`
	Batch      int    `json:"batch"`
}

// storedMsg is one message of the center stream as a direct get returns it: an
// item's stored body (see stored) and where it sits.
//
// Item messages carry no headers of their own: the server answers a batch of
// header-less messages from a preformatted template, and one with headers by
// rewriting them, which doubled the cost of a page. What the writers need (the event
// id, created_at) is read from the body instead.
type storedMsg struct {
	seq     uint64
	subject string
	data    []byte
}

// itemMeta is the part of a stored body the write path reads.
type itemMeta struct {
	ID        string `json:"id"`
	CreatedAt int64  `json:"created_at"`
}

// meta decodes the event id and created_at; a malformed body has neither.
func (m *storedMsg) meta() itemMeta {
	if im, ok := leadingMeta(m.data); ok {
		return im
	}
	var im itemMeta
	_ = json.Unmarshal(m.data, &im)
	return im
}

// leadingMeta reads the id and created_at from the front of a body as encodeItem
// writes it ({"id":…,"type":…,"created_at":…, then the payload), without decoding
// the payload: the write path reads them for every item it folds in. It gives up
// (false) on anything else, an id with an escape included, and meta decodes it all.
func leadingMeta(b []byte) (itemMeta, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"id":"`))
	if !ok {
		return itemMeta{}, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return itemMeta{}, false
	}
	id := rest[:end]
	if rest, ok = bytes.CutPrefix(rest[end+1:], []byte(`,"type":"`)); !ok {
		return itemMeta{}, false
	}
	if end = bytes.IndexByte(rest, '"'); end < 0 {
		return itemMeta{}, false
	}
	if rest, ok = bytes.CutPrefix(rest[end+1:], []byte(`,"created_at":`)); !ok {
		return itemMeta{}, false
	}
	n := 0
	for n < len(rest) && n < 19 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n == len(rest) || (rest[n] != ',' && rest[n] != '}') {
		return itemMeta{}, false
	}
	created, err := strconv.ParseInt(string(rest[:n]), 10, 64)
	if err != nil {
		return itemMeta{}, false
	}
	return itemMeta{ID: string(id), CreatedAt: created}, true
}

// getBatch returns, in stream order, up to n messages on subject (wildcards allowed)
// with a sequence of from or more, and whether more such messages remain after them.
// It costs one round trip; the server answers from its per-subject index, so
// messages of other subjects and deleted ones are not read.
func (s *Store) getBatch(ctx context.Context, subject string, from uint64, n int) (msgs []storedMsg, more bool, err error) {
	if n <= 0 {
		return nil, false, nil
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	req, err := json.Marshal(directGetRequest{Seq: max(from, 1), NextBySubj: subject, Batch: n})
	if err != nil {
		return nil, false, err
	}
	// The server sends at most n messages and the end of batch: a channel that
	// holds them all never drops one (SubscribeSync's would be 64K entries).
	replies := make(chan *nats.Msg, n+1)
	inbox := s.nc.NewInbox()
	sub, err := s.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, false, fmt.Errorf("direct get: %w", err)
	}
	defer sub.Unsubscribe()
	if err := s.nc.PublishRequest(s.directGet, inbox, req); err != nil {
		return nil, false, fmt.Errorf("direct get: %w", err)
	}
	msgs = make([]storedMsg, 0, n)
	for {
		var m *nats.Msg
		select {
		case m = <-replies:
		case <-ctx.Done():
			return nil, false, fmt.Errorf("direct get: %w", ctx.Err())
		}
		msg, status, err := directReply(m)
		switch {
		case err != nil:
			return nil, false, err
		case status == "":
			msgs = append(msgs, msg)
		case status == "204": // end of batch
			pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return msgs, pending > 0, nil
		default: // 404: nothing at or after from
			return msgs, false, nil
		}
	}
}

// directReply reads one reply of a direct get: a stored message (status ""), or the
// end of a batch (204) or nothing found (404); any other status is an error.
func directReply(m *nats.Msg) (storedMsg, string, error) {
	switch status := m.Header.Get("Status"); status {
	case "":
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return storedMsg{}, "", fmt.Errorf("direct get: message without a sequence")
		}
		return storedMsg{seq: seq, subject: m.Header.Get(jetstream.SubjectHeader), data: m.Data}, "", nil
	case "204", "404":
		return storedMsg{}, status, nil
	default:
		return storedMsg{}, "", fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
	}
}

// getNext returns the first message on subject with a sequence of from or more, nil
// when there is none. It is one request through the connection's shared reply
// subscription, so unlike getBatch it subscribes nothing: the write path's check for
// the one message it has just published, when its publish could not prove it the
// only one (see Store.add).
func (s *Store) getNext(ctx context.Context, subject string, from uint64) (*storedMsg, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	req, err := json.Marshal(directGetRequest{Seq: max(from, 1), NextBySubj: subject})
	if err != nil {
		return nil, err
	}
	m, err := s.nc.RequestWithContext(ctx, s.directGet, req)
	if err != nil {
		return nil, fmt.Errorf("direct get: %w", err)
	}
	msg, status, err := directReply(m)
	switch {
	case err != nil:
		return nil, err
	case status == "":
		return &msg, nil
	case status == "404": // nothing at or after from
		return nil, nil
	default:
		return nil, fmt.Errorf("direct get: status %s to a single get", status)
	}
}

// errNoMessage is the server's JSNoMessageFoundErr.
const errNoMessage = 10037

// leaderMsg reads the message at seq from the stream's leader; nil when there is
// none. A direct get may be answered by a replica a moment behind its leader (on a
// cluster); the write path asks the leader where that moment matters.
func (s *Store) leaderMsg(ctx context.Context, seq uint64) (*storedMsg, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	reply, err := s.nc.RequestWithContext(ctx, s.getAPI, fmt.Appendf(nil, `{"seq":%d}`, seq))
	if err != nil {
		return nil, fmt.Errorf("get message %d: %w", seq, err)
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject string `json:"subject"`
			Data    []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("get message %d: %w", seq, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == errNoMessage:
		return nil, nil
	case resp.Error != nil:
		return nil, fmt.Errorf("get message %d: %w", seq, resp.Error)
	case resp.Message == nil:
		return nil, fmt.Errorf("get message %d: empty answer", seq)
	}
	return &storedMsg{seq: seq, subject: resp.Message.Subject, data: resp.Message.Data}, nil
}

// deleteMsgs deletes messages from the stream; one that is gone already is fine.
func (s *Store) deleteMsgs(ctx context.Context, seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelRequests)
	for _, seq := range seqs {
		g.Go(func() error { return s.deleteMsg(gctx, seq) })
	}
	return g.Wait()
}

// errSequenceNotFound is the server's JSSequenceNotFoundErrF: the message to delete
// is not there (any more).
const errSequenceNotFound = 10043

// deleteMsg deletes one message, leaving its storage to compaction (no_erase, as
// jetstream's DeleteMsg does). It speaks the API itself because jetstream's DeleteMsg
// flattens the server's error to text, and a message that is gone already is
// success here.
func (s *Store) deleteMsg(ctx context.Context, seq uint64) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	reply, err := s.nc.RequestWithContext(ctx, s.deleteAPI, fmt.Appendf(nil, `{"seq":%d,"no_erase":true}`, seq))
	if err != nil {
		return fmt.Errorf("delete message %d: %w", seq, err)
	}
	var resp struct {
		Success bool                `json:"success"`
		Error   *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return fmt.Errorf("delete message %d: %w", seq, err)
	}
	if resp.Error != nil && resp.Error.ErrorCode != errSequenceNotFound {
		return fmt.Errorf("delete message %d: %w", seq, resp.Error)
	}
	return nil
}

// bounded gives ctx the configured timeout unless it has a deadline already.
func (s *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.Timeout)
}
