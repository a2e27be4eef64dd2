package notify

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// queue is one endpoint's events on disk: a directory with one file per
// event, named by a sequence number so that the order survives a restart.
// A file is written to a temporary name, synced, renamed into place and
// the directory synced before append returns, so an event that append
// accepted is on disk. Delivery removes the file; a crash between the
// delivery and the removal sends that event again (at least once).
type queue struct {
	dir   string
	limit int

	mu   sync.Mutex
	seqs []uint64 // queued events, oldest first
	next uint64
	wake chan struct{} // signalled when an event is appended

	tmp atomic.Uint64 // names temporary files
}

const (
	eventSuffix = ".json"
	tmpPrefix   = ".tmp-"
)

// openQueue opens (creating it if needed) the queue in dir, finds the
// events a previous run left and removes half-written files.
func openQueue(dir string, limit int) (*queue, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notification queue: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("notification queue: %w", err)
	}
	q := &queue{dir: dir, limit: limit, wake: make(chan struct{}, 1)}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			// A write that never finished: its request was never answered.
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, eventSuffix), 10, 64)
		if err != nil || !strings.HasSuffix(name, eventSuffix) {
			continue
		}
		q.seqs = append(q.seqs, seq)
		q.next = max(q.next, seq+1)
	}
	slices.Sort(q.seqs)
	return q, nil
}

func (q *queue) path(seq uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%020d%s", seq, eventSuffix))
}

// append stores data as the newest event, on stable storage before it
// returns when durable is set (otherwise a process crash loses nothing, a
// power loss may). When the queue is full the oldest events are removed
// first; dropped says how many.
func (q *queue) append(data []byte, durable bool) (dropped int, err error) {
	q.mu.Lock()
	seq := q.next
	q.next++
	q.mu.Unlock()

	tmp := filepath.Join(q.dir, tmpPrefix+strconv.FormatUint(q.tmp.Add(1), 10))
	if err := writeFile(tmp, data, durable); err != nil {
		_ = os.Remove(tmp)
		return 0, err
	}
	if err := os.Rename(tmp, q.path(seq)); err != nil {
		_ = os.Remove(tmp)
		return 0, err
	}
	if durable {
		if err := syncDir(q.dir); err != nil {
			return 0, err
		}
	}

	q.mu.Lock()
	i, _ := slices.BinarySearch(q.seqs, seq)
	q.seqs = slices.Insert(q.seqs, i, seq)
	var drop []uint64
	if over := len(q.seqs) - q.limit; q.limit > 0 && over > 0 {
		drop = slices.Clone(q.seqs[:over])
		q.seqs = q.seqs[over:]
	}
	q.mu.Unlock()
	for _, s := range drop {
		_ = os.Remove(q.path(s))
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return len(drop), nil
}

// head returns the oldest event. ok is false when the queue is empty.
func (q *queue) head() (seq uint64, data []byte, ok bool, err error) {
	for {
		q.mu.Lock()
		if len(q.seqs) == 0 {
			q.mu.Unlock()
			return 0, nil, false, nil
		}
		seq = q.seqs[0]
		q.mu.Unlock()
		data, err = os.ReadFile(q.path(seq))
		if errors.Is(err, fs.ErrNotExist) {
			// Dropped while we looked (the queue was full).
			q.forget(seq)
			continue
		}
		if err != nil {
			return seq, nil, true, err
		}
		return seq, data, true, nil
	}
}

// remove deletes a delivered event.
func (q *queue) remove(seq uint64) {
	q.forget(seq)
	_ = os.Remove(q.path(seq))
}

func (q *queue) forget(seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i, found := slices.BinarySearch(q.seqs, seq); found {
		q.seqs = slices.Delete(q.seqs, i, i+1)
	}
}

// len returns the number of queued events.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.seqs)
}

func writeFile(path string, data []byte, durable bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return err
		}
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // the queue directory comes from the operator's config
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}
