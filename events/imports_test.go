package events

import (
	"os/exec"
	"strings"
	"testing"
)

// Every part of the project imports events, so events imports none of them, and no
// NATS client: see the package documentation.
func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.CommandContext(t.Context(), goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/kommo-notify/notify/events"
	for dep := range strings.FieldsSeq(string(out)) {
		if dep != self && strings.HasPrefix(dep, "github.com/kommo-notify/notify/") || strings.HasPrefix(dep, "github.com/nats-io/") {
			t.Errorf("events depends on %s", dep)
		}
	}
}
