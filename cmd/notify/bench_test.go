package main

import (
	"strings"
	"testing"
)

func TestBenchUsage(t *testing.T) {
	r := notify(t, nil, "", "bench", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: notify bench <scenario>|all") || !strings.Contains(r.stdout, "-repeat") {
		t.Errorf("--help: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, s := range []string{"popup", "broadcast", "durable", "idle", "center", "email", "push", "overload"} {
		if !strings.Contains(r.stdout, "\n  "+s+" ") {
			t.Errorf("the usage does not describe %s", s)
		}
	}
	if r := notify(t, nil, "", "help"); !strings.Contains(r.stdout, "bench") {
		t.Errorf("the command list lacks bench:\n%s", r.stdout)
	}
}

func TestBenchCommandLineErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no scenario", []string{"bench"}, "name one scenario"},
		{"two scenarios", []string{"bench", "popup", "idle"}, "name one scenario"},
		{"unknown scenario", []string{"bench", "fast"}, `unknown scenario "fast"`},
		{"no runs", []string{"bench", "popup", "--repeat", "0"}, "--repeat must be at least 1"},
		{"bad flag", []string{"bench", "popup", "--rate", "lots"}, "invalid value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := notify(t, nil, "", c.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, exitUsage, c.want)
			}
		})
	}
}

func TestBenchHelperRoleIsHidden(t *testing.T) {
	r := notify(t, nil, "", "bench", "--role", "no-such-role")
	if r.code != exitFailure || !strings.Contains(r.stdout, `"error":"unknown role no-such-role"`) {
		t.Errorf("exit %d, stdout %q", r.code, r.stdout)
	}
	if strings.Contains(notify(t, nil, "", "bench", "--help").stdout, "-role") {
		t.Error("the usage shows the helpers' flag")
	}
}
