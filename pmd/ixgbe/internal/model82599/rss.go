package model82599

// RSS, 7.1.2.8: a Toeplitz hash over addresses and ports with a 40-byte
// secret key (RSSRK), whose 7 low bits index a 128-entry redirection table
// (RETA) giving the queue.

const rssKeyLen = 40 // 7.1.2.8.1: "a random secret key of length 320 bits (40 bytes)"

// maxHashInput is the longest hash input: IPv6 addresses and ports, 36 bytes.
const maxHashInput = 36

// toeplitz is ComputeHash of 7.1.2.8.1, bit by bit: for each input bit
// from the left (MSB of input[0] first) that is 1, XOR the left-most 32 bits
// of the key into the result, then shift the key left by one bit.
func toeplitz(key *[rssKeyLen]byte, input []byte) uint32 {
	var result uint32
	// window holds 40 key bits; its top 32 are the ones aligned with the
	// current input bit. Every 8 shifts the next key byte enters at the bottom.
	window := uint64(key[0])<<32 | uint64(key[1])<<24 | uint64(key[2])<<16 | uint64(key[3])<<8 | uint64(key[4])
	next := 5
	for _, b := range input {
		for bit := 7; bit >= 0; bit-- {
			if b&(1<<bit) != 0 {
				result ^= uint32(window >> 8)
			}
			window = (window << 1) & (1<<40 - 1)
		}
		if next < rssKeyLen {
			window |= uint64(key[next])
		}
		next++
	}
	return result
}

// rssTable is the same hash precomputed per key: table[i][v] is what input
// byte v at position i contributes, so a hash is one lookup per input byte.
type rssTable [maxHashInput][256]uint32

func (t *rssTable) build(key *[rssKeyLen]byte) {
	for i := range maxHashInput {
		var bitWord [8]uint32 // key window for bit 7-j of byte i
		for j := range 8 {
			bitWord[j] = keyWindow(key, i*8+j)
		}
		row := &t[i]
		row[0] = 0
		for v := 1; v < 256; v++ {
			low := v & -v // lowest set bit
			j := 7 - bitIndex(low)
			row[v] = row[v&^low] ^ bitWord[j]
		}
	}
}

func (t *rssTable) hash(input []byte) uint32 {
	var h uint32
	for i, b := range input {
		h ^= t[i][b]
	}
	return h
}

// keyWindow returns the 32 key bits starting at bit position start
// (0 is the MSB of key[0]); bits past the key read as 0.
func keyWindow(key *[rssKeyLen]byte, start int) uint32 {
	var w uint32
	for k := range 32 {
		pos := start + k
		var bit uint32
		if pos < rssKeyLen*8 && key[pos/8]&(0x80>>(pos%8)) != 0 {
			bit = 1
		}
		w = w<<1 | bit
	}
	return w
}

func bitIndex(x int) int {
	n := 0
	for x > 1 {
		x >>= 1
		n++
	}
	return n
}
