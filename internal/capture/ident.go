package capture

// maxIdents bounds the identities cached: one per live task that produced
// a record (entries are dropped at the task's exit record), so it only
// binds when exits are lost or more tasks than this are active.
const maxIdents = 65536

// identCache holds the identity section last sent by each task, keyed by
// tid and checked against the record's generation and epoch. Entries live
// in a slab reused through a free list, so a steady state does not
// allocate; past max entries the clock hand evicts one.
type identCache struct {
	max   int // 0: maxIdents
	index map[uint32]int32
	slab  []identEntry
	free  []int32
	hand  int
}

type identEntry struct {
	tid, gen, epoch uint32
	ident           [identSize]byte
}

// put records the identity of tid at generation gen (non-zero).
func (c *identCache) put(tid, gen, epoch uint32, ident []byte) {
	if c.index == nil {
		c.index = make(map[uint32]int32)
	}
	i, ok := c.index[tid]
	if !ok {
		i = c.slot()
		c.index[tid] = i
	}
	e := &c.slab[i]
	e.tid, e.gen, e.epoch = tid, gen, epoch
	copy(e.ident[:], ident)
}

// slot returns a free slab index, evicting an entry when full.
func (c *identCache) slot() int32 {
	if n := len(c.free); n > 0 {
		i := c.free[n-1]
		c.free = c.free[:n-1]
		return i
	}
	limit := c.max
	if limit <= 0 {
		limit = maxIdents
	}
	if len(c.slab) < limit {
		c.slab = append(c.slab, identEntry{})
		return int32(len(c.slab) - 1)
	}
	c.hand = (c.hand + 1) % len(c.slab)
	delete(c.index, c.slab[c.hand].tid)
	return int32(c.hand)
}

// get copies into ident the identity tid sent at (gen, epoch); false when it
// is not cached (never sent, evicted, or a newer one replaced it).
func (c *identCache) get(tid, gen, epoch uint32, ident []byte) bool {
	i, ok := c.index[tid]
	if !ok || gen == 0 {
		return false
	}
	e := &c.slab[i]
	if e.gen != gen || e.epoch != epoch {
		return false
	}
	copy(ident, e.ident[:])
	return true
}

// drop forgets tid (its task exited).
func (c *identCache) drop(tid uint32) {
	if i, ok := c.index[tid]; ok {
		delete(c.index, tid)
		c.slab[i] = identEntry{}
		c.free = append(c.free, i)
	}
}

// len returns the number of identities cached.
func (c *identCache) len() int { return len(c.index) }
