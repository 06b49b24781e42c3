package fs

import "testing"

// TestPrunerQueue: the pruner names the oldest inodes not forgotten, down
// to three quarters of its limit, puts them back at the end (the kernel may
// keep one in use), skips forgotten ones and drops them from its queue.
func TestPrunerQueue(t *testing.T) {
	var clock int64
	saved := monotonic
	monotonic = func() int64 { return clock }
	t.Cleanup(func() { monotonic = saved })
	p := &pruner{limit: 8, kick: make(chan struct{}, 1)}
	nodes := make([]*node, 12)
	for i := range nodes {
		nodes[i] = &node{}
		p.learned(nodes[i])
	}
	if len(p.kick) != 1 {
		t.Fatal("over the limit without a kick")
	}
	p.forgotten(nodes[0])
	p.forgotten(nodes[0]) // twice: counted once
	if p.live != 11 {
		t.Fatalf("live %d, want 11", p.live)
	}
	if d := p.due(); d != 11-6 {
		t.Fatalf("due %d, want 5", d)
	}
	// Nothing is asked for before it has been held pruneMinAge.
	if b := p.next(5); len(b) != 0 {
		t.Fatalf("next named %d nodes just learned", len(b))
	}
	clock += int64(pruneMinAge)
	batch := p.next(5)
	if len(batch) != 5 {
		t.Fatalf("batch of %d", len(batch))
	}
	for i, in := range batch {
		if in != &nodes[i+1].Inode {
			t.Fatalf("batch[%d] is not the oldest live node", i)
		}
	}
	// The named ones went to the end; the forgotten one is gone.
	if len(p.queue) != 11 || p.queue[0] != nodes[6] || p.queue[len(p.queue)-1] != nodes[5] {
		t.Fatalf("queue after next: %d nodes", len(p.queue))
	}
	for _, n := range nodes[1:6] {
		p.forgotten(n) // the kernel forgot what it was asked to
	}
	if d := p.due(); d != 0 {
		t.Fatalf("due %d after the forgets", d)
	}
	p.mu.Lock()
	p.compact()
	p.mu.Unlock()
	if len(p.queue) != 6 {
		t.Fatalf("compacted queue has %d nodes, want 6", len(p.queue))
	}
	// A batch never names a node twice, even when asked for more than live.
	if b := p.next(100); len(b) != 6 {
		t.Fatalf("next(100) named %d, want the 6 live ones", len(b))
	}
	// Those the kernel kept wait out the age again before they are named
	// again.
	if b := p.next(100); len(b) != 0 {
		t.Fatalf("next(100) named %d nodes it had just named", len(b))
	}
	clock += int64(pruneMinAge)
	if b := p.next(100); len(b) != 6 {
		t.Fatalf("next(100) named %d once they aged, want 6", len(b))
	}
}
