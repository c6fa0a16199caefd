//! Bulk inserts of invoices with their lines and uploads, with prepared statements reused
//! across the whole generation, and the random draws of what a new invoice holds.

use super::*;

/// Next free invoice number per code. Numbers run sequentially within a code as
/// on real fapiao, which also keeps the UNIQUE index growing at a few hot spots
/// (fast bulk inserts) instead of at random places.
#[derive(Default)]
pub(super) struct Numbers {
    next: HashMap<(i32, usize), u32>,
}

impl Numbers {
    /// `conn` given: continue after the highest number already stored for the
    /// code; otherwise (fresh database) start at a random number.
    pub(super) fn take(
        &mut self,
        year: i32,
        k: usize,
        code: &str,
        conn: Option<&Connection>,
        rng: &mut ChaCha8Rng,
    ) -> rusqlite::Result<u32> {
        let next = match self.next.entry((year, k)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let start = match conn {
                    None => rng.gen_range(1..3_000_000),
                    Some(conn) => {
                        let max: Option<String> = conn.query_row(
                            "SELECT MAX(invoice_no) FROM invoices WHERE invoice_code = ?1",
                            [code],
                            |r| r.get(0),
                        )?;
                        match max {
                            None => 1,
                            Some(s) => s
                                .parse::<u32>()
                                .map_err(|e| {
                                    rusqlite::Error::FromSqlConversionFailure(
                                        0,
                                        Type::Text,
                                        Box::new(e),
                                    )
                                })?
                                .saturating_add(1),
                        }
                    }
                };
                e.insert(start)
            }
        };
        let no = *next;
        if no > MAX_INVOICE_NO {
            return Err(failure(
                ffi::SQLITE_FULL,
                format!("invoice numbers of code {code} exhausted"),
            ));
        }
        *next += 1;
        Ok(no)
    }
}

pub(super) struct NewInvoice<'a> {
    pub(super) id: i64,
    pub(super) code: &'a str,
    pub(super) no: u32,
    pub(super) issue: NaiveDate,
    /// End of the generated history: the status of a historic invoice depends on
    /// its age at that date. `None`: a fresh invoice, still 'issued'.
    pub(super) horizon: Option<NaiveDate>,
}

pub(super) struct Line {
    product: usize,
    qty: i64,
    unit: i64,
    amount: i64,
    rate: i64,
    tax: i64,
}

/// Prepared inserts plus reusable buffers: the generator's hot path allocates
/// almost nothing per row.
pub(super) struct Writer<'c> {
    ins_invoice: CachedStatement<'c>,
    /// `ins_items[n - 1]` inserts n lines at once: one statement per invoice
    /// instead of one per line saves ~20% of the generation time.
    ins_items: Vec<CachedStatement<'c>>,
    ins_upload: CachedStatement<'c>,
    /// Next explicit row ids (bulk generation); `None`: let SQLite choose.
    next_item_id: Option<i64>,
    next_upload_id: Option<i64>,
    lines: Vec<Line>,
    no: String,
    date: String,
    updated: String,
    uploaded: String,
    remark: String,
    hash: String,
}

impl<'c> Writer<'c> {
    pub(super) fn new(conn: &'c Connection, explicit_ids: bool) -> rusqlite::Result<Self> {
        let mut ins_items = Vec::with_capacity(MAX_LINES);
        let mut sql = String::from(
            "INSERT INTO invoice_items (id, invoice_id, line_no, description, quantity,
               unit_price_cents, amount_cents, tax_rate_bp, tax_cents) VALUES (?,?,?,?,?,?,?,?,?)",
        );
        for _ in 0..MAX_LINES {
            ins_items.push(conn.prepare_cached(&sql)?);
            sql.push_str(",(?,?,?,?,?,?,?,?,?)");
        }
        Ok(Writer {
            ins_invoice: conn.prepare_cached(
                "INSERT INTO invoices (id, invoice_code, invoice_no, issue_date, seller_name,
                   seller_tax_id, buyer_name, buyer_tax_id, amount_cents, tax_cents, total_cents,
                   currency, status, remark, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?,
            ins_items,
            ins_upload: conn.prepare_cached(
                "INSERT INTO tax_uploads (id, invoice_id, uploaded_at, status, response_code, payload_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            next_item_id: explicit_ids.then_some(1),
            next_upload_id: explicit_ids.then_some(1),
            lines: Vec::with_capacity(MAX_LINES),
            no: String::new(),
            date: String::new(),
            updated: String::new(),
            uploaded: String::new(),
            remark: String::new(),
            hash: String::new(),
        })
    }

    /// Inserts the invoice, its 1-5 lines and its upload; returns the line count.
    pub(super) fn insert(
        &mut self,
        rng: &mut ChaCha8Rng,
        pool: &[Party],
        inv: &NewInvoice<'_>,
    ) -> rusqlite::Result<u64> {
        self.lines.clear();
        let (mut amount, mut tax) = (0i64, 0i64);
        for _ in 0..item_count(rng) {
            let product = rng.gen_range(0..PRODUCTS.len());
            let (_, rate, lo, hi, max_qty) = PRODUCTS[product];
            // Prices above 100 yuan are whole yuan, as in real price lists.
            let unit = if lo >= 10_000 {
                rng.gen_range(lo / 100..=hi / 100) * 100
            } else {
                rng.gen_range(lo..=hi)
            };
            let qty = rng.gen_range(1..=max_qty);
            let line_amount = unit * qty;
            let line_tax = tax_of(line_amount, rate);
            amount += line_amount;
            tax += line_tax;
            self.lines.push(Line {
                product,
                qty,
                unit,
                amount: line_amount,
                rate,
                tax: line_tax,
            });
        }
        let seller_ix = if rng.gen_bool(0.8) {
            rng.gen_range(0..CORE_SELLERS)
        } else {
            rng.gen_range(0..pool.len())
        };
        let mut buyer_ix = rng.gen_range(0..pool.len());
        if buyer_ix == seller_ix {
            buyer_ix = (buyer_ix + 1) % pool.len();
        }
        let (seller, buyer) = (&pool[seller_ix], &pool[buyer_ix]);
        let (hour, minute, second) = (
            rng.gen_range(8..20),
            rng.gen_range(0..50),
            rng.gen_range(0..60),
        );
        let (status, updated) = match inv.horizon {
            None => ("issued", inv.issue),
            Some(horizon) => historic_status(rng, inv.issue, horizon),
        };
        let currency = if seller.foreign && rng.gen_bool(0.1) {
            "USD"
        } else {
            "CNY"
        };
        let has_remark = remark(rng, &mut self.remark, inv.issue.year());

        fmt_date(&mut self.date, inv.issue);
        self.no.clear();
        let _ = write!(self.no, "{:08}", inv.no);
        fmt_datetime(&mut self.updated, updated, hour, minute, second);
        self.ins_invoice.execute(params![
            inv.id,
            inv.code,
            self.no,
            self.date,
            seller.name,
            seller.tax_id,
            buyer.name,
            buyer.tax_id,
            amount,
            tax,
            amount + tax,
            currency,
            status,
            has_remark.then_some(self.remark.as_str()),
            self.updated,
        ])?;
        let stmt = &mut self.ins_items[self.lines.len() - 1];
        let mut ix = 0;
        for (line_no, l) in (1i64..).zip(self.lines.iter()) {
            let id = self.next_item_id;
            if let Some(next) = self.next_item_id.as_mut() {
                *next += 1;
            }
            let values: [&dyn ToSql; 9] = [
                &id,
                &inv.id,
                &line_no,
                &PRODUCTS[l.product].0,
                &l.qty,
                &l.unit,
                &l.amount,
                &l.rate,
                &l.tax,
            ];
            for v in values {
                ix += 1;
                stmt.raw_bind_parameter(ix, v)?;
            }
        }
        stmt.raw_execute()?;

        let (up_status, response) = match rng.gen_range(0..100) {
            0..=94 => ("accepted", "0000"),
            95..=97 => ("rejected", ["E1001", "E2013", "E3002"][rng.gen_range(0..3)]),
            _ => ("pending", "P0001"),
        };
        fmt_datetime(
            &mut self.uploaded,
            inv.issue,
            hour,
            minute + rng.gen_range(1..10),
            second,
        );
        let mut digest = [0u8; 32];
        rng.fill(&mut digest);
        self.hash.clear();
        for b in digest {
            self.hash.push(HEX[usize::from(b >> 4)] as char);
            self.hash.push(HEX[usize::from(b & 15)] as char);
        }
        let id = self.next_upload_id;
        if let Some(next) = self.next_upload_id.as_mut() {
            *next += 1;
        }
        self.ins_upload.execute(params![
            id,
            inv.id,
            self.uploaded,
            up_status,
            response,
            self.hash
        ])?;
        Ok(self.lines.len() as u64)
    }
}

/// 1-5 (`MAX_LINES`) lines, about 3 on average.
fn item_count(rng: &mut ChaCha8Rng) -> usize {
    match rng.gen_range(0..100) {
        0..=9 => 1,
        10..=34 => 2,
        35..=64 => 3,
        65..=84 => 4,
        _ => 5,
    }
}

/// Old invoices are mostly paid by the end of the history, recent ones mostly
/// not yet; returns the status and the day of the last change.
fn historic_status(
    rng: &mut ChaCha8Rng,
    issue: NaiveDate,
    horizon: NaiveDate,
) -> (&'static str, NaiveDate) {
    let age = horizon.signed_duration_since(issue).num_days().max(0) as u64;
    let roll = rng.gen_range(0..100);
    let status = if age > 45 {
        match roll {
            0..=87 => "paid",
            88..=92 => "issued",
            93..=96 => "red-flushed",
            _ => "void",
        }
    } else {
        match roll {
            0..=49 => "issued",
            50..=94 => "paid",
            95..=97 => "red-flushed",
            _ => "void",
        }
    };
    let later = if status == "issued" {
        0
    } else {
        rng.gen_range(0..=age.min(45))
    };
    (
        status,
        issue.checked_add_days(Days::new(later)).unwrap_or(issue),
    )
}

/// Half of the invoices carry a remark; returns whether `buf` holds one.
fn remark(rng: &mut ChaCha8Rng, buf: &mut String, year: i32) -> bool {
    buf.clear();
    match rng.gen_range(0..10) {
        0..=4 => return false,
        5 | 6 => {
            let _ = write!(buf, "合同号 HT{year}-{:04}", rng.gen_range(1..2000));
        }
        7 => {
            let _ = write!(buf, "PO-{:06}", rng.gen_range(1..200_000));
        }
        _ => buf.push_str(REMARKS[rng.gen_range(0..REMARKS.len())]),
    }
    true
}
