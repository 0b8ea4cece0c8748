package bench

import (
	"context"
	"os"
	"testing"
)

// helperEnv makes this test binary a helper process of the harness (the role the
// notify command plays with `notify bench --role ...`).
const helperEnv = "NOTIFY_BENCH_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" && len(os.Args) > 2 && os.Args[1] == "--role" {
		os.Exit(RunChild(context.Background(), os.Args[2:], os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}
