package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
)

// blockSize is the period of the generator's random block.
const blockSize = 1 << 20

// gen streams size bytes that neither compress nor repeat at any block
// boundary: a seeded random 1 MiB block whose first 8 bytes are replaced by
// the block number. It holds one block in memory, whatever the size.
type gen struct {
	block []byte
	size  int64
	off   int64
}

func newGen(seed uint64, size int64) *gen {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	block := make([]byte, blockSize)
	r := rand.NewChaCha8(key)
	_, _ = r.Read(block)
	return &gen{block: block, size: size}
}

// Read fills p with the next bytes of the stream.
func (g *gen) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && g.off < g.size {
		pos := g.off % blockSize
		want := min(int64(len(p)-n), blockSize-pos, g.size-g.off)
		copy(p[n:n+int(want)], g.block[pos:pos+want])
		if pos < 8 {
			var ctr [8]byte
			binary.BigEndian.PutUint64(ctr[:], uint64(g.off/blockSize))
			copy(p[n:n+int(want)], ctr[pos:])
		}
		n += int(want)
		g.off += want
	}
	return n, nil
}

// section returns a reader of bytes [off, off+n) of the stream of seed.
func section(seed uint64, size, off, n int64) io.Reader {
	g := newGen(seed, size)
	g.off = off
	g.size = min(size, off+n)
	return g
}

// genDigest returns the sha256 digest ("sha256:...") of the stream.
func genDigest(seed uint64, size int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, newGen(seed, size))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
