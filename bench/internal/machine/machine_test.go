package machine

import (
	"runtime"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCPUModelNamesTheCPU(t *testing.T) {
	assert.NotEmpty(t, CPUModel())
}

func TestRelateNeedsTwoCPUs(t *testing.T) {
	_, err := Relate(0, 0)
	assert.ErrorContains(t, err, "two different CPUs")
	_, err = Relate(0, 100000)
	assert.ErrorContains(t, err, "cpu 100000")
}

func TestClassifyUsesDPDKsRules(t *testing.T) {
	assert.Equal(t, Hyperthreads, classify(3, 0, 3, 0), "same core, same node")
	assert.Equal(t, Cores, classify(3, 0, 4, 0), "other core, same node")
	assert.Equal(t, Sockets, classify(3, 0, 3, 1), "other node, whatever the core id")
}

func TestRelateReadsSysfs(t *testing.T) {
	if runtime.NumCPU() < 2 {
		testenv.Missing(t, "two CPUs (have %d)", runtime.NumCPU())
	}
	_, err := Relate(0, 1)
	require.NoError(t, err)
}

func TestBusyIsAFraction(t *testing.T) {
	b, err := Busy([]int{0}, 20*time.Millisecond)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, b, 0.0)
	assert.LessOrEqual(t, b, 1.0)

	_, err = Busy([]int{100000}, time.Millisecond)
	assert.ErrorContains(t, err, "cpu 100000")
}
