package main

import "testing"

// An excerpt of a real ghz v0.120.0 report (-O json) of a 1 s run against the demo.
const ghzSample = `{"date":"2026-12-02T15:56:09Z","endReason":"timeout","count":5261,"total":1003211345,
"average":9407043,"fastest":301200,"slowest":239160000,"rps":5244.27,
"errorDistribution":{"rpc error: code = Unavailable desc = transport is closing":2},
"statusCodeDistribution":{"OK":5259,"Unavailable":2},
"latencyDistribution":[{"percentage":10,"latency":1200000},{"percentage":25,"latency":2300000},
{"percentage":50,"latency":3456789},{"percentage":75,"latency":5000000},{"percentage":90,"latency":8000000},
{"percentage":95,"latency":9000000},{"percentage":99,"latency":12345678}],"histogram":[],"details":[]}`

func TestParseGhzReport(t *testing.T) {
	r, err := parseGhzReport([]byte(ghzSample))
	if err != nil {
		t.Fatal(err)
	}
	if r.Count != 5261 || r.RPS != 5244.27 || r.Status["OK"] != 5259 {
		t.Fatalf("report = %+v", r)
	}
	if p50, p99 := r.percentileMS(50), r.percentileMS(99); p50 != 3.456789 || p99 != 12.345678 {
		t.Fatalf("p50 %v ms, p99 %v ms", p50, p99)
	}
	if p := r.percentileMS(42); p != 0 {
		t.Fatalf("an unreported percentile: %v", p)
	}
}

func TestParseGhzReportRefusesWhatIsNoReport(t *testing.T) {
	for _, bad := range []string{"", "not json", `{"count":10,"rps":5}`, `Summary:\n  Count: 10`} {
		if _, err := parseGhzReport([]byte(bad)); err == nil {
			t.Errorf("parseGhzReport(%q): no error", bad)
		}
	}
}
