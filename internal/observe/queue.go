package observe

import "sync"

// queue is a bounded queue between many producers and one consumer that
// takes everything waiting at once. Its buffer grows as items wait (an
// idle stream holds none of its bound's worth) and a large one is let go
// once the queue drains.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T // waiting, oldest first
	max    int
	closed bool
	ready  chan struct{} // signalled when items arrive or the queue closes
}

func newQueue[T any](max int) *queue[T] {
	return &queue[T]{max: max, ready: make(chan struct{}, 1)}
}

// push adds v; full reports that the bound dropped it, closed that the
// queue no longer takes items.
func (q *queue[T]) push(v T) (full, closed bool) {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return false, true
	case len(q.items) >= q.max:
		q.mu.Unlock()
		return true, false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.signal()
	return false, false
}

func (q *queue[T]) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take waits for items and returns all of them, oldest first, giving
// the queue spare (the batch taken before, done with) to fill next; ok is
// false once the queue is closed and empty.
func (q *queue[T]) take(spare []T) (batch []T, ok bool) {
	clear(spare)
	if cap(spare) > keptBuffer && len(spare) < cap(spare)/4 {
		spare = nil // a burst's buffer: let it go
	}
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			batch, q.items = q.items, spare[:0]
			q.mu.Unlock()
			return batch, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		<-q.ready
	}
}

// keptBuffer is the capacity a drained queue keeps at most.
const keptBuffer = 1024

// close stops the queue taking items (those waiting are still taken);
// false if it was closed already.
func (q *queue[T]) close() bool {
	q.mu.Lock()
	was := q.closed
	q.closed = true
	q.mu.Unlock()
	q.signal()
	return !was
}
