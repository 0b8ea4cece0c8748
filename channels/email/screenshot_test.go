package email

import (
	"context"
	"html/template"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// previewPage shows the two golden messages side by side, each in a frame as wide as
// a mail client's reading pane.
var previewPage = template.Must(template.New("preview").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Email notifications</title></head>
<body style="margin:0;background:#dfe4ea;display:flex;gap:24px;padding:24px;">
{{range .}}<iframe srcdoc="{{.}}" style="width:600px;height:520px;border:0;background:#fff;box-shadow:0 2px 8px rgba(0,0,0,.15);"></iframe>
{{end}}</body></html>`))

// TestScreenshot renders the golden HTML parts in headless Chromium and writes
// docs/email.png: NOTIFY_WRITE_SCREENSHOT=1 go test ./channels/email -run TestScreenshot.
func TestScreenshot(t *testing.T) {
	if os.Getenv("NOTIFY_WRITE_SCREENSHOT") != "1" {
		t.Skip("set NOTIFY_WRITE_SCREENSHOT=1 to rewrite docs/email.png")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	var pages []string
	for _, name := range []string{"add_call.html", "add_error.html"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, string(b))
	}
	dir := t.TempDir()
	var page strings.Builder
	if err := previewPage.Execute(&page, pages); err != nil {
		t.Fatal(err)
	}
	preview := filepath.Join(dir, "preview.html")
	if err := os.WriteFile(preview, []byte(page.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := filepath.Abs(filepath.Join("..", "..", "docs", "email.png"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--no-first-run",
		"--hide-scrollbars", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--screenshot="+out, "--window-size=1272,568", "file://"+preview)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	t.Logf("wrote %s", out)
}
