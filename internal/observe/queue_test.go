package observe

import (
	"sync"
	"testing"
)

func TestQueue(t *testing.T) {
	q := newQueue[int](3)
	if cap(q.items) != 0 {
		t.Fatalf("an idle queue holds a buffer of %d", cap(q.items))
	}
	for i := range 5 {
		full, closed := q.push(i)
		if closed || full != (i >= 3) {
			t.Fatalf("push %d: full %v closed %v", i, full, closed)
		}
	}
	batch, ok := q.take(nil)
	if !ok || len(batch) != 3 || batch[0] != 0 || batch[2] != 2 {
		t.Fatalf("take: %v %v", batch, ok)
	}
	q.push(7)
	if !q.close() || q.close() {
		t.Fatal("close twice")
	}
	if _, closed := q.push(8); !closed {
		t.Fatal("a closed queue took an item")
	}
	// What waited when it closed is still taken, then the end.
	if batch, ok = q.take(batch); !ok || len(batch) != 1 || batch[0] != 7 {
		t.Fatalf("after close: %v %v", batch, ok)
	}
	if _, ok = q.take(batch); ok {
		t.Fatal("a closed, empty queue gave a batch")
	}
}

// Producers and the consumer at once: every item pushed and not refused
// is taken once, in each producer's order.
func TestQueueConcurrent(t *testing.T) {
	q := newQueue[[2]int](1 << 20)
	const producers, each = 8, 5000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				q.push([2]int{p, i})
			}
		}()
	}
	got := make(chan [producers]int)
	go func() {
		var next [producers]int
		var batch [][2]int
		for ok := true; ok; {
			if batch, ok = q.take(batch); ok {
				for _, v := range batch {
					if v[1] != next[v[0]] {
						t.Errorf("producer %d: item %d after %d", v[0], v[1], next[v[0]]-1)
					}
					next[v[0]] = v[1] + 1
				}
			}
		}
		got <- next
	}()
	wg.Wait()
	q.close()
	for p, n := range <-got {
		if n != each {
			t.Errorf("producer %d: %d items taken", p, n)
		}
	}
}
