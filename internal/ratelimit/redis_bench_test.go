package ratelimit

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/redisbatch"
	"github.com/redis/go-redis/v9"
)

// BenchmarkRedisParallel measures one Lua GCRA round trip per check
// against a private redis-server (skipped when it is not installed).
func BenchmarkRedisParallel(b *testing.B) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		b.Skip("redis-server not installed")
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", b.TempDir())
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	client := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr}, PoolSize: 32})
	defer client.Close()
	batch := redisbatch.New(client, time.Second)
	defer batch.Close()
	st := NewRedis(batch, "bench:", time.Second)
	lim := Limit{Rate: 1000000, Period: time.Second, Burst: 1000000}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := st.Allow(context.Background(), "k"+strconv.Itoa(i%64), lim, time.Now()); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkLocalQuotasNewConsumers: a new consumer per request with the
// store long full costs the same however many arrived before.
func BenchmarkLocalQuotasNewConsumers(b *testing.B) {
	q := NewLocalQuotas(100000)
	end := time.Now().Add(time.Hour)
	ctx := context.Background()
	for i := range 200000 {
		q.Incr(ctx, "warm-"+strconv.Itoa(i), end)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.Incr(ctx, "c-"+strconv.Itoa(i), end)
	}
}
