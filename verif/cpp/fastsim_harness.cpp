// Fast run path of the ncore chip: the Verilated `chip` top (inside `chip_fast`, which
// registers every input; see verif/fastsim.py), a C++ DRAM behind its AXI4 master port and
// a C++ AXI4-Lite host, with no Python and no VPI in the loop.
//
// Usage: harness <spec file> <results file>
//
// The spec (written by verif/fastsim.py) is whitespace-separated text, one directive a line:
//
//   dram <bytes> <bus bytes> <addr width> <cores>   DRAM size, AXI bus, cores of the chip
//   layout <core_base> <core_stride> <chip_irq_status> <ctrl> <status> <irq_status>
//          <prog_base> <prog_base_hi> <prog_len> <ctrl_start> <ctrl_soft_reset>
//   readout <n> <offset>...                          core registers read after a run
//                                                    (offset 0 of the list must be STATUS)
//   dbg <sbuf bytes> <psum bytes>                    bytes of dbg_sbuf_data / dbg_psum_data
//   case <image> <readback bytes> <max cycles> <err base> <err size> <sbuf entries>
//        <psum entries> <out prefix>
//   prog <core> <base> <length>                      (after its case; cores without one idle)
//   run                                              runs the case
//
// The DRAM model reproduces the timing of verif/axi_ram_model.py's SimAxiRam (bench_dram:
// eight bursts queued per direction, pause 0), cycle for cycle: an AR/AW handshake enters a
// SyncFIFOBuffered(depth 8) (7-entry queue + output register, 2 cycles to its output), the
// read engine issues one beat per cycle from the queue head into a one-entry output stage
// (first R beat 3 cycles after the AR handshake, then one per cycle while RREADY), reads
// and writes proceed independently, W beats are taken in AW order while the B queue has
// room, B is queued (2 cycles) after the last W beat; responses in order per direction,
// IDs echoed. INCR and FIXED bursts, any size; WRAP answers SLVERR; DECERR beyond the
// memory, SLVERR in the error window, as SimAxiRam.
//
// Per case the results file gets:
//   case <index> <timeout 0|1> <sim cycles> <run seconds>
//   start <core> <cycle of its START write, from the first>
//   core <core> <after_reset or -1> <value of each readout register>...
// and <out prefix>.dram (readback bytes), .sbuf and .psum (raw dbg words, core by core).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "Vchip.h"
#include "verilated.h"

namespace {

template <typename T>
inline void to_bytes(const T& v, uint8_t* out, size_t n) {
    if constexpr (std::is_integral_v<T>) {
        uint64_t x = v;
        std::memcpy(out, &x, n);
    } else {
        std::memcpy(out, v.data(), n);
    }
}

template <typename T>
inline void from_bytes(T& v, const uint8_t* in, size_t n) {
    if constexpr (std::is_integral_v<T>) {
        uint64_t x = 0;
        std::memcpy(&x, in, n);
        v = static_cast<T>(x);
    } else {
        std::memcpy(v.data(), in, n);
    }
}

template <typename T>
inline void zero(T& v, size_t n) {
    if constexpr (std::is_integral_v<T>) {
        v = 0;
    } else {
        std::memset(v.data(), 0, n);
    }
}

// Amaranth's SyncFIFOBuffered: an inner queue of depth-1 entries and an output register.
template <typename T, int DEPTH>
struct BufFifo {
    static constexpr int INNER = DEPTH - 1;
    T buf[INNER];
    int head = 0, count = 0;
    bool out_valid = false;
    T out{};

    bool w_rdy() const { return count != INNER; }
    bool r_rdy() const { return out_valid; }
    const T& r_data() const { return out; }
    // One clock edge with the write/read enables sampled before it.
    void clock(bool w_en, const T& w_data, bool r_en) {
        bool do_write = w_en && w_rdy();
        bool do_inner_read = count != 0 && (!out_valid || r_en);
        if (do_inner_read) {
            out = buf[head];
            head = (head + 1) % INNER;
            --count;
            out_valid = true;
        } else if (r_en) {
            out_valid = false;
        }
        if (do_write) {
            buf[(head + count) % INNER] = w_data;
            ++count;
        }
    }
    void reset() {
        head = count = 0;
        out_valid = false;
    }
};

struct Burst {
    uint32_t id = 0;
    uint64_t addr = 0;
    uint32_t len = 0, size = 0, burst = 0, resp = 0;
};

struct BResp {
    uint32_t id = 0, resp = 0;
};

constexpr uint32_t OKAY = 0, SLVERR = 2, DECERR = 3;
constexpr uint32_t FIXED = 0, WRAP = 2;

struct Dram {
    std::vector<uint8_t> mem;
    uint64_t size = 0, words = 0, nb = 16, amask = 0xFFFFFFFFull, word_mask = 0;
    int shift = 4;
    uint64_t err_base = 0, err_size = 0;

    BufFifo<Burst, 8> arq, awq;
    BufFifo<BResp, 8> bq;
    // read engine
    uint32_t r_beat = 0;
    uint64_t r_addr = 0;
    bool out_valid = false;
    uint32_t out_id = 0, out_resp = 0;
    bool out_last = false;
    std::vector<uint8_t> rd_data;
    // write engine
    uint32_t w_beat = 0;
    uint64_t w_addr = 0;
    // sampled handshakes of the current cycle
    bool ar_hs = false, aw_hs = false, w_hs = false, r_hs = false, b_hs = false;
    Burst ar_in, aw_in;
    bool w_last_in = false;
    uint64_t w_strb_in = 0;
    std::vector<uint8_t> w_data_in;

    void init(uint64_t bytes, uint64_t bus_bytes, int addr_width) {
        size = bytes;
        nb = bus_bytes;
        shift = 0;
        while ((1ull << shift) < nb) ++shift;
        words = size / nb;
        int abits = 0;
        while ((1ull << abits) < words) ++abits;
        word_mask = abits >= 64 ? ~0ull : (1ull << abits) - 1;
        amask = addr_width >= 64 ? ~0ull : (1ull << addr_width) - 1;
        mem.assign(size, 0);
        rd_data.assign(nb, 0);
        w_data_in.assign(nb, 0);
    }

    bool in_err(uint64_t lo, uint64_t hi_excl) const {
        return err_size != 0 && lo < err_base + err_size && hi_excl > err_base;
    }

    uint32_t aw_resp(const Burst& b) const {
        if (b.burst == WRAP) return SLVERR;
        uint64_t last = b.addr + (uint64_t(b.len + 1) << b.size);
        if (last > size) return DECERR;
        return in_err(b.addr, last) ? SLVERR : OKAY;
    }

    template <typename M>
    void drive(M* top) {
        top->m_axi_arready = arq.w_rdy();
        top->m_axi_awready = awq.w_rdy();
        top->m_axi_wready = awq.r_rdy() && bq.w_rdy();
        top->m_axi_rvalid = out_valid;
        top->m_axi_rid = out_id;
        top->m_axi_rresp = out_resp;
        top->m_axi_rlast = out_last;
        if (out_resp)
            zero(top->m_axi_rdata, nb);
        else
            from_bytes(top->m_axi_rdata, rd_data.data(), nb);
        top->m_axi_bvalid = bq.r_rdy();
        top->m_axi_bid = bq.r_data().id;
        top->m_axi_bresp = bq.r_data().resp;
    }

    template <typename M>
    void sample(M* top) {
        ar_hs = top->m_axi_arvalid && top->m_axi_arready;
        aw_hs = top->m_axi_awvalid && top->m_axi_awready;
        w_hs = top->m_axi_wvalid && top->m_axi_wready;
        r_hs = top->m_axi_rvalid && top->m_axi_rready;
        b_hs = top->m_axi_bvalid && top->m_axi_bready;
        if (ar_hs) {
            ar_in.id = top->m_axi_arid;
            ar_in.addr = top->m_axi_araddr;
            ar_in.len = top->m_axi_arlen;
            ar_in.size = top->m_axi_arsize;
            ar_in.burst = top->m_axi_arburst;
            ar_in.resp = ar_in.burst == WRAP ? SLVERR : OKAY;
        }
        if (aw_hs) {
            aw_in.id = top->m_axi_awid;
            aw_in.addr = top->m_axi_awaddr;
            aw_in.len = top->m_axi_awlen;
            aw_in.size = top->m_axi_awsize;
            aw_in.burst = top->m_axi_awburst;
            aw_in.resp = aw_resp(aw_in);
        }
        if (w_hs) {
            to_bytes(top->m_axi_wdata, w_data_in.data(), nb);
            w_strb_in = top->m_axi_wstrb;
            w_last_in = top->m_axi_wlast;
        }
    }

    // The clock edge: reads see the memory before this edge's write (SimAxiRam's read port
    // is not transparent).
    void update() {
        // read engine
        bool advance = !out_valid || r_hs;
        bool issue = arq.r_rdy() && advance;
        bool r_pop = false;
        if (issue) {
            const Burst& cur = arq.r_data();
            uint64_t beat_addr = r_beat == 0 ? cur.addr : r_addr;
            uint64_t word = (beat_addr >> shift) << shift;
            uint32_t beat_resp = word >= size ? DECERR : in_err(word, word + nb) ? SLVERR : OKAY;
            uint64_t idx = (beat_addr >> shift) & word_mask;
            if (idx < words) std::memcpy(rd_data.data(), &mem[idx * nb], nb);
            bool last = r_beat == cur.len;
            out_id = cur.id;
            out_resp = cur.resp ? cur.resp : beat_resp;
            out_last = last;
            uint64_t step = cur.burst == FIXED ? 0 : (1ull << cur.size);
            r_addr = (beat_addr + step) & amask;
            r_beat = last ? 0 : r_beat + 1;
            r_pop = last;
        }
        if (advance) out_valid = issue;
        // write engine
        bool w_last = false;
        BResp b_in;
        if (w_hs) {
            const Burst& cur = awq.r_data();
            uint64_t waddr = w_beat == 0 ? cur.addr : w_addr;
            if (!cur.resp) {
                uint64_t idx = (waddr >> shift) & word_mask;
                if (idx < words) {
                    uint8_t* dst = &mem[idx * nb];
                    for (uint64_t i = 0; i < nb; ++i)
                        if (w_strb_in >> i & 1) dst[i] = w_data_in[i];
                }
            }
            uint64_t step = cur.burst == FIXED ? 0 : (1ull << cur.size);
            w_addr = (waddr + step) & amask;
            w_beat = w_last_in ? 0 : w_beat + 1;
            w_last = w_last_in;
            b_in.id = cur.id;
            b_in.resp = cur.resp;
        }
        arq.clock(ar_hs, ar_in, r_pop);
        awq.clock(aw_hs, aw_in, w_last);
        bq.clock(w_last, b_in, b_hs);
    }
};

struct Sim {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vchip> top;
    Dram dram;
    uint64_t cycle = 0;

    Sim() : ctx(new VerilatedContext) { top.reset(new Vchip{ctx.get()}); }

    // One clock cycle. On entry the chip's outputs have settled for this cycle and the
    // model's inputs hold the values the chip sees now (the `chip_fast` wrapper registers
    // every input): sample this cycle's handshakes, advance the DRAM, drive its outputs
    // for the next cycle, and clock the edge.
    void step() {
        dram.sample(top.get());
        dram.update();
        dram.drive(top.get());
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
        ++cycle;
    }

    void reset() {
        dram.drive(top.get());
        top->rst = 1;
        for (int i = 0; i < 3; ++i) step();
        top->rst = 0;
        step();
        step();
    }

    // AXI4-Lite master (a Moore machine, like the DRAM): AW and W together, then B; AR,
    // then R. Inputs written here take effect at the next step().
    uint32_t axil_write(uint32_t addr, uint32_t data) {
        top->s_axil_awaddr = addr;
        top->s_axil_wdata = data;
        top->s_axil_wstrb = 0xF;
        top->s_axil_awvalid = 1;
        top->s_axil_wvalid = 1;
        top->s_axil_bready = 1;
        step();
        uint32_t resp = 0;
        for (;;) {
            bool aw = top->s_axil_awvalid && top->s_axil_awready;
            bool w = top->s_axil_wvalid && top->s_axil_wready;
            bool b = top->s_axil_bvalid && top->s_axil_bready;
            if (aw) top->s_axil_awvalid = 0;
            if (w) top->s_axil_wvalid = 0;
            if (b) {
                resp = top->s_axil_bresp;
                top->s_axil_bready = 0;
            }
            step();
            if (b) break;
        }
        if (resp) fail("AXI4-Lite write error at " + std::to_string(addr));
        return resp;
    }

    uint32_t axil_read(uint32_t addr) {
        top->s_axil_araddr = addr;
        top->s_axil_arvalid = 1;
        top->s_axil_rready = 1;
        step();
        uint32_t data = 0, resp = 0;
        for (;;) {
            bool ar = top->s_axil_arvalid && top->s_axil_arready;
            bool r = top->s_axil_rvalid && top->s_axil_rready;
            if (ar) top->s_axil_arvalid = 0;
            if (r) {
                data = top->s_axil_rdata;
                resp = top->s_axil_rresp;
                top->s_axil_rready = 0;
            }
            step();
            if (r) break;
        }
        if (resp) fail("AXI4-Lite read error at " + std::to_string(addr));
        return data;
    }

    [[noreturn]] static void fail(const std::string& msg) {
        std::cerr << "fastsim: " << msg << std::endl;
        std::exit(2);
    }
};

struct Layout {
    uint32_t core_base, core_stride, chip_irq_status, ctrl, status, irq_status, prog_base,
        prog_base_hi, prog_len, ctrl_start, ctrl_soft_reset;
};

struct Case {
    std::string image, out;
    uint64_t readback = 0, max_cycles = 0, err_base = 0, err_size = 0;
    uint64_t sbuf_entries = 0, psum_entries = 0;
    std::vector<std::pair<uint64_t, uint64_t>> progs;  // length 0: not started
    std::vector<bool> started;
};

constexpr int POLL = 128;  // cycles between looks at the IRQ line

// Entry i of a core's SBUF or PSUM: the address takes effect at the next step (registered
// input), the word shows one step later (the memory's read port).
void dbg_dump(Sim& s, std::ofstream& f, int cores, bool psum, uint64_t entries, size_t nbytes) {
    std::vector<uint8_t> word(nbytes);
    auto* top = s.top.get();
    for (int c = 0; c < cores; ++c) {
        top->dbg_core = c;
        top->dbg_psum = psum;
        for (uint64_t i = 0; i <= entries; ++i) {
            top->dbg_en = i < entries;
            top->dbg_addr = i < entries ? i : entries - 1;
            s.step();
            if (i == 0) continue;
            if (psum)
                to_bytes(top->dbg_psum_data, word.data(), nbytes);
            else
                to_bytes(top->dbg_sbuf_data, word.data(), nbytes);
            f.write(reinterpret_cast<char*>(word.data()), nbytes);
        }
        top->dbg_en = 0;
        s.step();
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " <spec> <results>" << std::endl;
        return 2;
    }
    std::ifstream spec(argv[1]);
    std::ofstream res(argv[2]);
    if (!spec || !res) Sim::fail("cannot open the spec or results file");
    Sim s;
    Layout L{};
    std::vector<uint32_t> readout;
    size_t sbuf_bytes = 0, psum_bytes = 0;
    int ncores = 0;
    Case cur;
    int index = 0;
    bool was_reset = false;
    std::string line;
    while (std::getline(spec, line)) {
        std::istringstream in(line);
        std::string op;
        if (!(in >> op)) continue;
        if (op == "dram") {
            uint64_t bytes, nb;
            int aw;
            in >> bytes >> nb >> aw >> ncores;
            s.dram.init(bytes, nb, aw);
        } else if (op == "layout") {
            in >> L.core_base >> L.core_stride >> L.chip_irq_status >> L.ctrl >> L.status >>
                L.irq_status >> L.prog_base >> L.prog_base_hi >> L.prog_len >> L.ctrl_start >>
                L.ctrl_soft_reset;
        } else if (op == "readout") {
            size_t n;
            in >> n;
            readout.resize(n);
            for (auto& r : readout) in >> r;
        } else if (op == "dbg") {
            in >> sbuf_bytes >> psum_bytes;
        } else if (op == "case") {
            cur = Case{};
            in >> cur.image >> cur.readback >> cur.max_cycles >> cur.err_base >> cur.err_size >>
                cur.sbuf_entries >> cur.psum_entries >> cur.out;
            cur.progs.assign(ncores, {0, 0});
            cur.started.assign(ncores, false);
        } else if (op == "prog") {
            int c;
            uint64_t base, len;
            in >> c >> base >> len;
            if (c < 0 || c >= ncores) Sim::fail("bad core in prog");
            cur.progs[c] = {base, len};
            cur.started[c] = true;
        } else if (op == "run") {
            if (!was_reset) {
                s.reset();
                was_reset = true;
            }
            // DRAM: the image, zeros after it
            std::fill(s.dram.mem.begin(), s.dram.mem.end(), 0);
            {
                std::ifstream img(cur.image, std::ios::binary);
                if (!img) Sim::fail("cannot open " + cur.image);
                img.read(reinterpret_cast<char*>(s.dram.mem.data()), s.dram.mem.size());
            }
            s.dram.err_base = cur.err_base;
            s.dram.err_size = cur.err_size;
            auto win = [&](int c) { return L.core_base + c * L.core_stride; };
            uint32_t want = 0;
            for (int c = 0; c < ncores; ++c) {
                if (!cur.started[c]) continue;
                want |= 1u << c;
                auto [base, len] = cur.progs[c];
                s.axil_write(win(c) + L.prog_base, uint32_t(base & 0xFFFFFFFFu));
                s.axil_write(win(c) + L.prog_base_hi, uint32_t(base >> 32));
                s.axil_write(win(c) + L.prog_len, uint32_t(len));
                s.axil_write(win(c) + L.irq_status, 3);
            }
            uint64_t t0 = s.cycle;
            auto w0 = std::chrono::steady_clock::now();
            std::vector<int64_t> started_at(ncores, -1);
            for (int c = 0; c < ncores; ++c) {
                if (!cur.started[c]) continue;
                started_at[c] = int64_t(s.cycle - t0);
                s.axil_write(win(c) + L.ctrl, L.ctrl_start);
            }
            bool timeout = false;
            while (want) {
                for (int i = 0; i < POLL; ++i) s.step();
                if (s.top->irq && (s.axil_read(L.chip_irq_status) & want) == want) break;
                if (s.cycle - t0 > cur.max_cycles) {
                    timeout = true;
                    break;
                }
            }
            double run_s =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
            uint64_t sim_cycles = s.cycle - t0;
            char buf[160];
            std::snprintf(buf, sizeof buf, "case %d %d %llu %.6f\n", index, int(timeout),
                          (unsigned long long)sim_cycles, run_s);
            res << buf;
            int64_t first = -1;
            for (int c = 0; c < ncores; ++c) {
                if (started_at[c] < 0) continue;
                if (first < 0) first = started_at[c];
                res << "start " << c << " " << started_at[c] - first << "\n";
            }
            for (int c = 0; c < ncores && !timeout; ++c) {
                if (!cur.started[c]) continue;
                std::vector<uint32_t> vals;
                for (uint32_t off : readout) vals.push_back(s.axil_read(win(c) + off));
                s.axil_write(win(c) + L.irq_status, 3);
                int64_t after = -1;
                if (vals[0] & 8) {  // error: soft reset, which must return the core to idle
                    s.axil_write(win(c) + L.ctrl, L.ctrl_soft_reset);
                    for (int k = 0; k < 1000; ++k) {
                        if (s.axil_read(win(c) + L.status) == 1) break;
                        for (int i = 0; i < 8; ++i) s.step();
                    }
                    after = s.axil_read(win(c) + L.status);
                }
                res << "core " << c << " " << after;
                for (uint32_t v : vals) res << " " << v;
                res << "\n";
            }
            if (!timeout) {
                std::ofstream d(cur.out + ".dram", std::ios::binary);
                uint64_t n = std::min<uint64_t>(cur.readback, s.dram.mem.size());
                d.write(reinterpret_cast<const char*>(s.dram.mem.data()), n);
                if (cur.sbuf_entries) {
                    std::ofstream f(cur.out + ".sbuf", std::ios::binary);
                    dbg_dump(s, f, ncores, false, cur.sbuf_entries, sbuf_bytes);
                }
                if (cur.psum_entries) {
                    std::ofstream f(cur.out + ".psum", std::ios::binary);
                    dbg_dump(s, f, ncores, true, cur.psum_entries, psum_bytes);
                }
            }
            res.flush();
            ++index;
            if (timeout) break;  // the cores are still busy: later cases would be meaningless
        } else {
            Sim::fail("unknown directive " + op);
        }
    }
    s.top->final();
    return 0;
}
