//! The words, companies and products generated invoices are made of. Fixed for every seed:
//! the seed only chooses among them.

use super::*;

/// City, 6-digit administrative division (its first 4 digits start invoice codes).
pub(super) const REGIONS: &[(&str, &str)] = &[
    ("北京", "110000"),
    ("上海", "310000"),
    ("深圳", "440300"),
    ("杭州", "330100"),
    ("广州", "440100"),
    ("南京", "320100"),
    ("成都", "510100"),
    ("武汉", "420100"),
    ("苏州", "320500"),
    ("西安", "610100"),
];
pub(super) const CN_BRANDS: &[&str] = &[
    "华信", "云帆", "金桥", "恒泰", "鼎盛", "博远", "瑞丰", "天成", "新元", "汇通", "同创", "中科",
];
pub(super) const CN_TRADES: &[&str] = &[
    "科技",
    "贸易",
    "商贸",
    "软件",
    "信息技术",
    "物流",
    "电子",
    "建设工程",
    "餐饮管理",
    "文化传媒",
];
pub(super) const EN_BRANDS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Soylent",
    "Vandelay",
    "Hooli",
    "Wonka",
    "Cyberdyne",
];
pub(super) const EN_TRADES: &[&str] = &[
    "Trading",
    "Technology",
    "Logistics",
    "Software",
    "Electronics",
    "Consulting",
];
pub(super) const EN_SUFFIXES: &[&str] = &[
    "Co., Ltd.",
    "Ltd.",
    "(Shanghai) Co., Ltd.",
    "(China) Co., Ltd.",
];

/// Description, VAT rate (basis points), unit price range (cents), max quantity.
pub(super) const PRODUCTS: &[(&str, i64, i64, i64, i64)] = &[
    ("技术服务费", 600, 100_000, 5_000_000, 1),
    ("Cloud hosting (monthly)", 600, 20_000, 800_000, 12),
    ("办公用品", 1300, 500, 20_000, 50),
    ("咨询服务费", 600, 200_000, 3_000_000, 1),
    ("运输服务", 900, 5_000, 200_000, 10),
    ("Software license (annual)", 1300, 100_000, 2_000_000, 20),
    ("笔记本电脑", 1300, 400_000, 1_200_000, 10),
    ("打印纸 A4 70g", 1300, 2_000, 3_500, 100),
    ("餐饮服务", 600, 5_000, 300_000, 1),
    ("Network switch 24-port", 1300, 80_000, 600_000, 8),
    ("物业管理费", 600, 50_000, 1_000_000, 1),
    ("Freight forwarding", 900, 50_000, 900_000, 1),
    ("建筑工程服务", 900, 1_000_000, 20_000_000, 1),
    ("电子元器件", 1300, 10, 5_000, 1000),
    ("农产品（大米）", 900, 300, 800, 500),
    ("Consulting services", 600, 100_000, 2_000_000, 1),
    ("软件开发服务", 600, 500_000, 8_000_000, 1),
    ("广告发布费", 600, 50_000, 2_000_000, 1),
    ("会议服务费", 600, 20_000, 500_000, 1),
    ("Maintenance & support", 600, 30_000, 900_000, 4),
];
pub(super) const REMARKS: &[&str] = &[
    "项目：数据中心扩容",
    "Quarterly service fee",
    "按合同约定分期付款",
    "含运费",
    "Payment terms: 30 days net",
    "开票人：财务部",
];
pub(super) const USCC_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
pub(super) struct Party {
    pub(super) name: String,
    pub(super) tax_id: String,
    /// English-named (foreign-invested) company: sometimes bills in USD.
    pub(super) foreign: bool,
}

/// ~500 distinct companies, 70% with Chinese names; fixed (see `PARTY_SEED`),
/// built once per process because `write_one` may be called in a tight loop.
pub(super) fn party_pool() -> &'static [Party] {
    static POOL: OnceLock<Vec<Party>> = OnceLock::new();
    POOL.get_or_init(build_party_pool)
}

pub(super) fn build_party_pool() -> Vec<Party> {
    let mut rng = ChaCha8Rng::seed_from_u64(PARTY_SEED);
    let mut seen = HashSet::new();
    let mut pool = Vec::with_capacity(POOL_SIZE);
    let mut attempts = 0;
    while pool.len() < POOL_SIZE {
        attempts += 1;
        let (city, division) = REGIONS[rng.gen_range(0..REGIONS.len())];
        let foreign = pool.len() % 10 >= 7;
        let name = if foreign {
            format!(
                "{} {} {}",
                EN_BRANDS[rng.gen_range(0..EN_BRANDS.len())],
                EN_TRADES[rng.gen_range(0..EN_TRADES.len())],
                EN_SUFFIXES[rng.gen_range(0..EN_SUFFIXES.len())]
            )
        } else {
            format!(
                "{city}{}{}{}",
                CN_BRANDS[rng.gen_range(0..CN_BRANDS.len())],
                CN_TRADES[rng.gen_range(0..CN_TRADES.len())],
                if rng.gen_bool(0.85) {
                    "有限公司"
                } else {
                    "股份有限公司"
                }
            )
        };
        // Unified social credit code shape: "91" + division + 10 characters.
        let mut tax_id = format!("91{division}");
        for _ in 0..10 {
            tax_id.push(USCC_CHARS[rng.gen_range(0..USCC_CHARS.len())] as char);
        }
        // Distinct names; the name space (~2760) is far larger than the pool, the
        // attempt bound only guarantees termination.
        if seen.insert(name.clone()) || attempts > 20 * POOL_SIZE {
            pool.push(Party {
                name,
                tax_id,
                foreign,
            });
        }
    }
    pool
}

/// 12-digit fapiao code: '0', 4-digit region, 2-digit year, batch, '11'.
pub(super) fn invoice_code(buf: &mut String, year: i32, k: usize) {
    buf.clear();
    let region = &REGIONS[k % REGIONS.len()].1[..4];
    let _ = write!(
        buf,
        "0{region}{:02}00{}11",
        year.rem_euclid(100),
        k / REGIONS.len() % 10
    );
}
