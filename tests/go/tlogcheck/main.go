// Command tlogcheck checks a strongroom transparency log with Go's golang.org/x/mod/sumdb/tlog
// and sumdb/note, an implementation independent of strongroom's. Run in GOPATH mode
// (GO111MODULE=off GOPATH=/usr/share/gocode) with Debian's golang-golang-x-mod-dev.
//
//	tlogcheck tree DIR VKEY                    signature, tree hash from the hash tiles
//	tlogcheck entries DIR VKEY                 tree hash recomputed from every entry bundle
//	tlogcheck inclusion DIR VKEY PROOF         a `strongroom log prove` output (CheckRecord)
//	tlogcheck consistency VKEY OLD NEW PROOF   a `strongroom log consistency` output (CheckTree)
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlogcheck: "+format+"\n", args...)
	os.Exit(1)
}

// open verifies the checkpoint note with the verifier key and parses its body
// (C2SP tlog-checkpoint: origin, size, base64 root hash).
func open(file, vkey string) (string, tlog.Tree) {
	msg, err := os.ReadFile(file)
	if err != nil {
		die("%v", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		die("verifier key: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		die("%s: note.Open: %v", file, err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		die("%s: short checkpoint", file)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		die("%s: size: %v", file, err)
	}
	h, err := tlog.ParseHash(lines[2])
	if err != nil {
		die("%s: root hash: %v", file, err)
	}
	if lines[0] != v.Name() {
		die("%s: origin %q is not the key name %q", file, lines[0], v.Name())
	}
	return lines[0], tlog.Tree{N: size, Hash: h}
}

// tiles reads C2SP tlog-tiles paths: Go's sumdb paths without the height element.
type tiles struct{ dir string }

func (t tiles) Height() int { return 8 }

func (t tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	var out [][]byte
	for _, tile := range ts {
		p := strings.TrimPrefix(tile.Path(), "tile/8/")
		data, err := os.ReadFile(filepath.Join(t.dir, "tile", p))
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	return out, nil
}

func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func indexPath(n int64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n /= 1000; n > 0; n /= 1000 {
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

func main() {
	if len(os.Args) < 2 {
		die("usage: tlogcheck tree|entries|inclusion|consistency ...")
	}
	switch os.Args[1] {
	case "tree":
		dir, vkey := os.Args[2], os.Args[3]
		_, tree := open(filepath.Join(dir, "checkpoint"), vkey)
		h, err := tlog.TreeHash(tree.N, tlog.TileHashReader(tree, tiles{dir}))
		if err != nil {
			die("TreeHash from tiles: %v", err)
		}
		if h != tree.Hash {
			die("tree hash from tiles %v != checkpoint %v", h, tree.Hash)
		}
		fmt.Printf("ok tree %d\n", tree.N)
	case "entries":
		dir, vkey := os.Args[2], os.Args[3]
		_, tree := open(filepath.Join(dir, "checkpoint"), vkey)
		var stored []tlog.Hash
		r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				out[i] = stored[x]
			}
			return out, nil
		})
		var n int64
		for b := int64(0); n < tree.N; b++ {
			w := tree.N - b*256
			p := "tile/entries/" + indexPath(b)
			if w < 256 {
				p += fmt.Sprintf(".p/%d", w)
			}
			data, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil {
				die("%v", err)
			}
			for len(data) > 0 {
				l := int(data[0])<<8 | int(data[1])
				hs, err := tlog.StoredHashes(n, data[2:2+l], r)
				if err != nil {
					die("StoredHashes: %v", err)
				}
				stored = append(stored, hs...)
				data = data[2+l:]
				n++
			}
		}
		h, err := tlog.TreeHash(tree.N, r)
		if err != nil || h != tree.Hash {
			die("tree hash from entries %v != checkpoint %v (%v)", h, tree.Hash, err)
		}
		fmt.Printf("ok entries %d\n", n)
	case "inclusion":
		dir, vkey, file := os.Args[2], os.Args[3], os.Args[4]
		_, tree := open(filepath.Join(dir, "checkpoint"), vkey)
		f := fields(file)
		index, _ := strconv.ParseInt(f["index"][0], 10, 64)
		size, _ := strconv.ParseInt(f["tree_size"][0], 10, 64)
		if size != tree.N {
			die("proof is for size %d, checkpoint has %d", size, tree.N)
		}
		entry, err := base64.StdEncoding.DecodeString(f["entry"][0])
		if err != nil {
			die("entry: %v", err)
		}
		if err := tlog.CheckRecord(hashes(f["proof"]), tree.N, tree.Hash, index, tlog.RecordHash(entry)); err != nil {
			die("CheckRecord: %v", err)
		}
		fmt.Printf("ok inclusion %d in %d\n", index, tree.N)
	case "consistency":
		vkey, oldf, newf, file := os.Args[2], os.Args[3], os.Args[4], os.Args[5]
		_, old := open(oldf, vkey)
		_, cur := open(newf, vkey)
		if err := tlog.CheckTree(tlog.TreeProof(hashes(fields(file)["proof"])), cur.N, cur.Hash, old.N, old.Hash); err != nil {
			die("CheckTree: %v", err)
		}
		fmt.Printf("ok consistency %d -> %d\n", old.N, cur.N)
	default:
		die("unknown mode %q", os.Args[1])
	}
}

// fields reads "name value" lines.
func fields(file string) map[string][]string {
	data, err := os.ReadFile(file)
	if err != nil {
		die("%v", err)
	}
	m := map[string][]string{}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), " ")
		m[k] = append(m[k], v)
	}
	return m
}

func hashes(vs []string) []tlog.Hash {
	var out []tlog.Hash
	for _, v := range vs {
		h, err := tlog.ParseHash(v)
		if err != nil {
			die("proof hash: %v", err)
		}
		out = append(out, h)
	}
	return out
}
