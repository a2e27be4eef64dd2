package s3

// A pipe lets a writer send one full chunk to S3 in the background while
// it fills the next, so that receiving a body and storing it overlap
// instead of taking turns. It holds at most one chunk in flight; the
// writer waits for it before it sends another, so chunks are stored in
// order and the stored segments (or parts) stay a prefix of the file.
//
// The second buffer this takes is drawn from the driver's budget
// (spareBudget bytes, at least one chunk): a writer that finds the budget
// spent sends its chunks in turn as before. Memory is therefore bounded
// by one chunk per writer plus the budget, whatever the number of
// uploads.
type pipe struct {
	d     *Driver
	token bool   // holds one of d.spares
	spare []byte // the buffer back from the last flight, for the next
	cur   *flight
}

type flight struct {
	done chan struct{}
	buf  []byte
	etag string
	err  error
}

// spareBudget is the memory all writers together may use for the second
// buffer of a pipe.
const spareBudget = 64 << 20

func newSpares(chunk int64) chan struct{} {
	return make(chan struct{}, max(1, spareBudget/chunk))
}

// start sends buf with put in the background when a second buffer is
// available, and returns the empty buffer to fill next; else it returns
// nil and the caller sends buf itself. There must be no flight (wait).
func (p *pipe) start(buf []byte, put func([]byte) (string, error)) []byte {
	if !p.token {
		select {
		case p.d.spares <- struct{}{}:
			p.token = true
		default:
			return nil
		}
	}
	f := &flight{done: make(chan struct{}), buf: buf}
	p.cur = f
	go func() {
		defer close(f.done)
		f.etag, f.err = put(f.buf)
	}()
	next := p.spare
	p.spare = nil
	if next == nil {
		next = make([]byte, 0, cap(buf))
	}
	return next[:0]
}

// wait waits for the chunk in flight, if any, and returns its ETag;
// flew reports whether there was one.
func (p *pipe) wait() (etag string, flew bool, err error) {
	f := p.cur
	if f == nil {
		return "", false, nil
	}
	<-f.done
	p.cur, p.spare = nil, f.buf
	return f.etag, true, f.err
}

// release waits for the chunk in flight and gives the second buffer back
// to the budget.
func (p *pipe) release() {
	_, _, _ = p.wait()
	p.spare = nil
	if p.token {
		<-p.d.spares
		p.token = false
	}
}
