package server

import (
	"crypto/rand"
	"crypto/tls"
	"time"
)

// Session tickets resume TLS sessions without a full handshake; their
// keys decrypt every session they were used for, so an old key is a
// forward-secrecy hole. Each TLS listener makes a fresh key every
// TicketRotation and accepts tickets of the last TicketKeys keys: a
// ticket resumes for at most TicketRotation × TicketKeys, and a key
// taken from memory opens no session older than that.
const (
	TicketRotation = time.Hour
	TicketKeys     = 4
)

// ticketKeys are one listener's session ticket keys, newest first.
type ticketKeys struct {
	conf *tls.Config
	keys [][32]byte
}

// rotate makes a new key the one that encrypts, and drops the oldest
// beyond TicketKeys.
func (t *ticketKeys) rotate() {
	var k [32]byte
	_, _ = rand.Read(k[:])
	t.keys = append([][32]byte{k}, t.keys...)
	if len(t.keys) > TicketKeys {
		t.keys = t.keys[:TicketKeys]
	}
	t.conf.SetSessionTicketKeys(t.keys)
}

// rotateTickets installs fresh ticket keys in conf now and rotates them
// every interval until done is closed.
func rotateTickets(conf *tls.Config, interval time.Duration, done <-chan struct{}) *ticketKeys {
	t := &ticketKeys{conf: conf}
	t.rotate()
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				t.rotate()
			}
		}
	}()
	return t
}
