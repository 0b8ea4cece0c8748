package email

import (
	"encoding/json"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kommo-notify/notify/events"
)

// TestMailpit delivers the seed's examples through Mailpit, the mail catcher the
// compose stack runs, and reads them back from its HTTP API, as a developer would in
// its web UI. Install it with go install github.com/axllent/mailpit@v1.27.11; without
// it the test is skipped, and fails under CI.
func TestMailpit(t *testing.T) {
	mp := startMailpit(t)
	srv, err := ParseURL(fmt.Sprintf("smtp://notify:secret@127.0.0.1:%d?tls=none", mp.smtpPort))
	if err != nil {
		t.Fatal(err)
	}
	dir := newProfiles()
	dir.set("acme", "42", ann())
	s, err := New(Config{Server: srv, From: testFrom, BaseURL: testBase, Recipients: dir, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(t.Context()) })

	call := validEvent(t, "mailpit-call", events.AddCall, seedAddCall)
	for _, ev := range []*events.Event{call, validEvent(t, "mailpit-error", events.AddError, seedAddError)} {
		if err := s.Send(t.Context(), delivery(ev)); err != nil {
			t.Fatalf("Send %s: %v", ev.ID, err)
		}
	}

	var list struct {
		Total    int `json:"total"`
		Messages []struct {
			ID, MessageID, Subject string
		} `json:"messages"`
	}
	eventually(t, "Mailpit lists 2 messages", func() bool {
		mp.get(t, "/api/v1/messages", &list)
		return list.Total == 2
	})
	var id string
	for _, m := range list.Messages {
		if m.MessageID == messageID(call.ID, "acme", "42", "notify.example") {
			id = m.ID
		}
	}
	if id == "" {
		t.Fatalf("no message with the call's Message-ID among %+v", list.Messages)
	}

	var msg struct {
		From       struct{ Name, Address string }
		To         []struct{ Name, Address string }
		Subject    string
		Text, HTML string
	}
	mp.get(t, "/api/v1/message/"+id, &msg)
	if msg.Subject != "Incoming call from Jeremy Watts" {
		t.Errorf("Subject %q", msg.Subject)
	}
	if msg.From.Address != "noreply@notify.example" || msg.From.Name != "Kommo Notifications" {
		t.Errorf("From %+v", msg.From)
	}
	if len(msg.To) != 1 || msg.To[0].Address != "ann@example.com" || msg.To[0].Name != "Ann Lee" {
		t.Errorf("To %+v", msg.To)
	}
	for _, want := range []string{"Call from +1 (415) 523-7743", "04:10", "Jason Nash", "https://acme.kommo.example/contacts/detail/18221265"} {
		if !strings.Contains(msg.Text, want) || !strings.Contains(msg.HTML, want) {
			t.Errorf("the parts lack %q", want)
		}
	}
	var headers map[string][]string
	mp.get(t, "/api/v1/message/"+id+"/headers", &headers)
	if got := headers["Auto-Submitted"]; len(got) != 1 || got[0] != "auto-generated" {
		t.Errorf("Auto-Submitted %v", got)
	}
}

type mailpit struct {
	smtpPort int
	api      string // http://127.0.0.1:port
}

// startMailpit runs Mailpit on free loopback ports with its database in a temp dir,
// and stops it when the test ends.
func startMailpit(t *testing.T) *mailpit {
	t.Helper()
	bin := mailpitBinary()
	if bin == "" {
		msg := "mailpit not found in PATH or $(go env GOPATH)/bin: go install github.com/axllent/mailpit@v1.27.11"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	mp := &mailpit{smtpPort: freePort(t)}
	httpPort := freePort(t)
	mp.api = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--smtp", "127.0.0.1:"+strconv.Itoa(mp.smtpPort),
		"--listen", "127.0.0.1:"+strconv.Itoa(httpPort),
		"--database", filepath.Join(dir, "mailpit.db"),
		"--disable-version-check", "--smtp-disable-rdns", "--quiet",
		// AUTH PLAIN on the loopback, as with credentials in SMTP_URL.
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mailpit: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := http.Get(mp.api + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return mp
			}
		}
		select {
		case <-exited:
			t.Fatalf("mailpit exited:\n%s", out.String())
		case <-deadline:
			t.Fatalf("mailpit not ready after 30s:\n%s", out.String())
		case <-tick.C:
		}
	}
}

func (mp *mailpit) get(t *testing.T, path string, into any) {
	t.Helper()
	resp, err := http.Get(mp.api + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func mailpitBinary() string {
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	for _, gopath := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(gopath, "bin", "mailpit")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// freePort is a loopback port nobody listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
