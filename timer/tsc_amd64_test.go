package timer

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/testenv"
)

func TestCPUIDLeaf0NamesTheVendor(t *testing.T) {
	maxLeaf, b, c, d := cpuid(0, 0)
	if maxLeaf < 1 {
		t.Fatalf("cpuid(0).EAX (max leaf) = %d, want >= 1", maxLeaf)
	}
	vendor := string([]byte{
		byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24),
		byte(d), byte(d >> 8), byte(d >> 16), byte(d >> 24),
		byte(c), byte(c >> 8), byte(c >> 16), byte(c >> 24),
	})
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		testenv.Missing(t, "/proc/cpuinfo to compare with: %v", err)
	}
	if !bytes.Contains(cpuinfo, []byte("vendor_id\t: "+vendor+"\n")) {
		t.Fatalf("cpuid(0) vendor %q does not match /proc/cpuinfo's vendor_id", vendor)
	}
}

func TestInvariantTSCMatchesTheKernelsNonstopTSCFlag(t *testing.T) {
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		testenv.Missing(t, "/proc/cpuinfo to compare with: %v", err)
	}
	var flags []string
	for line := range strings.Lines(string(cpuinfo)) {
		if strings.HasPrefix(line, "flags") {
			flags = strings.Fields(line)
			break
		}
	}
	want := false
	for _, f := range flags {
		if f == "nonstop_tsc" {
			want = true
		}
	}
	if got := InvariantTSC(); got != want {
		t.Fatalf("InvariantTSC() = %v, but /proc/cpuinfo has nonstop_tsc = %v", got, want)
	}
}

func TestHzFromLeaf15(t *testing.T) {
	tests := []struct {
		name              string
		den, num, crystal uint32
		want              uint64
		ok                bool
	}{
		{"Skylake client: 24 MHz crystal, ratio 216/2", 2, 216, 24_000_000, 2_592_000_000, true},
		{"Xeon-SP: 25 MHz crystal, ratio 168/2", 2, 168, 25_000_000, 2_100_000_000, true},
		{"ratio not reduced", 3, 250, 38_400_000, 3_200_000_000, true},
		{"crystal not enumerated", 2, 216, 0, 0, false},
		{"ratio not enumerated", 0, 0, 24_000_000, 0, false},
		{"denominator missing", 0, 216, 24_000_000, 0, false},
		{"absurdly high", 1, 0xffffffff, 0xffffffff, 0, false},
		{"absurdly low", 1000, 1, 24_000_000, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := hzFromLeaf15(tc.den, tc.num, tc.crystal, 0)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Fatalf("hzFromLeaf15(%d, %d, %d) = %d, %v; want %d, %v", tc.den, tc.num, tc.crystal, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestHzFromHypervisorKHz(t *testing.T) {
	if hz, ok := hzFromHypervisorKHz(2_596_150, 0, 0, 0); !ok || hz != 2_596_150_000 {
		t.Fatalf("hzFromHypervisorKHz(2596150) = %d, %v; want 2596150000, true", hz, ok)
	}
	if hz, ok := hzFromHypervisorKHz(0, 0, 0, 0); ok {
		t.Fatalf("hzFromHypervisorKHz(0) = %d, true; want not ok", hz)
	}
}

func TestRoundHzRoundsToNearestStep(t *testing.T) {
	for _, tc := range []struct{ in, want uint64 }{
		{2_596_149_999, 2_596_100_000},
		{2_596_150_000, 2_596_200_000},
		{2_596_049_999, 2_596_000_000},
	} {
		if got := roundHz(tc.in, 100_000); got != tc.want {
			t.Errorf("roundHz(%d, 100000) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestCalibrationAgreesWithHz(t *testing.T) {
	hz := Hz()
	got := calibrate(50 * time.Millisecond)
	if dev := float64(int64(got-hz)) / float64(hz); dev > 0.01 || dev < -0.01 {
		t.Fatalf("calibrate(50ms) = %d, Hz() = %d (%s): %.3f%% apart, want within 1%%", got, hz, Source(), dev*100)
	}
}

func TestSetHzRefusesImplausibleFrequencies(t *testing.T) {
	for _, hz := range []uint64{0, 999_999, 100_000_000_001} {
		var f freq
		if err := f.set(hz); err == nil {
			t.Errorf("set(%d): got nil error, want a refusal", hz)
		} else {
			t.Log(err)
		}
	}
}
