package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestVirtioNeedsTwoCPUs(t *testing.T) {
	code, stdout, stderr := runVsdpdk("-cpus", "0", "virtio")
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "the virtio test needs two CPUs")
}

func TestVirtioRowsMatchingNothingListsTheRows(t *testing.T) {
	code, _, stderr := runVsdpdk("-rows", "no such row", "virtio")
	assert.Equal(t, 1, code)
	for _, r := range virtioRows {
		assert.Contains(t, stderr, r.name)
	}
}
