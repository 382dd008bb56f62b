//! The texts of the says: built-in customer-service utterances per locale, sampled with Zipf's
//! law, optionally made unique per say.

use super::error::LoadError;
use serde::Serialize;
use switchboard_schemas::Locale;

/// The Zipf exponent of [`Mix::Zipf`].
pub const ZIPF_S: f64 = 1.1;

/// How the texts of the says are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mix {
    /// Built-in customer-service utterances of the locale, sampled with Zipf's law (s = 1.1):
    /// a few questions are very frequent, many are rare — like real traffic, caches included.
    #[default]
    Zipf,
    /// Like `Zipf`, but each text is made unique with a counter phrase (`（第N次，…）` or
    /// ` (#N, …)`) so that no cache can answer it.
    Unique,
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mix::Zipf => "zipf",
            Mix::Unique => "unique",
        })
    }
}

impl std::str::FromStr for Mix {
    type Err = LoadError;

    /// `zipf` or `unique` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zipf" => Ok(Mix::Zipf),
            "unique" => Ok(Mix::Unique),
            _ => Err(LoadError::Invalid { option: "mix", reason: "expected zipf or unique".into() }),
        }
    }
}

/// Picks the texts of the says: the locale's built-in utterances sampled with Zipf's law, made
/// unique per say for [`Mix::Unique`]. Also used by the benchmarks (`cli/benches/turns.rs`).
pub struct Texts {
    mix: Mix,
    locale: Locale,
    nonce: String,
    list: &'static [&'static str],
    /// Cumulative Zipf weights over `list`.
    cumulative: Vec<f64>,
    rng: rand::rngs::StdRng,
}

impl Texts {
    /// Texts of `mix` in `locale`; `nonce` makes unique texts differ between runs.
    pub fn new(mix: Mix, locale: Locale, nonce: &str) -> Self {
        use rand::SeedableRng;
        let list = utterances(locale);
        let mut sum = 0.0;
        let cumulative = (1..=list.len())
            .map(|rank| {
                sum += 1.0 / (rank as f64).powf(ZIPF_S);
                sum
            })
            .collect();
        Texts { mix, locale, nonce: nonce.to_string(), list, cumulative, rng: rand::rngs::StdRng::from_os_rng() }
    }

    /// A Zipf-distributed index into the list.
    fn zipf_index(&mut self) -> usize {
        use rand::Rng;
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let u = self.rng.random::<f64>() * total;
        self.cumulative.partition_point(|c| *c <= u).min(self.list.len().saturating_sub(1))
    }

    /// The text of say number `k`.
    pub fn next(&mut self, k: u64) -> String {
        let base = self.list.get(self.zipf_index()).copied().unwrap_or("你好");
        match (self.mix, self.locale) {
            (Mix::Zipf, _) => base.to_string(),
            (Mix::Unique, Locale::ZhCn) => format!("{base}（第{}次，{}）", k + 1, self.nonce),
            (Mix::Unique, Locale::En) => format!("{base} (#{}, {})", k + 1, self.nonce),
        }
    }
}

/// The built-in utterances of a locale, most frequent first (rank = Zipf rank).
pub fn utterances(locale: Locale) -> &'static [&'static str] {
    match locale {
        Locale::ZhCn => ZH_UTTERANCES,
        Locale::En => EN_UTTERANCES,
    }
}

const ZH_UTTERANCES: &[&str] = &[
    "我的快递到哪了",
    "怎么退货",
    "我要退款",
    "什么时候发货",
    "订单怎么取消",
    "转人工",
    "退款多久到账",
    "能不能催一下发货",
    "怎么修改收货地址",
    "发票怎么开",
    "你好",
    "物流好几天没更新了",
    "收到的商品坏了",
    "怎么换货",
    "优惠券用不了",
    "谢谢",
    "七天无理由退货怎么申请",
    "快递显示签收了但我没收到",
    "运费谁来出",
    "可以货到付款吗",
    "会员怎么开通",
    "积分怎么用",
    "怎么联系卖家",
    "商品缺货什么时候补",
    "下单后还能改颜色吗",
    "退货地址是哪里",
    "支付失败怎么办",
    "为什么扣了两次钱",
    "我要投诉",
    "订单号在哪里看",
    "能开增值税专用发票吗",
    "这个商品有保修吗",
    "保修期多久",
    "尺码不合适可以换吗",
    "包裹被退回了怎么办",
    "能不能指定快递公司",
    "今天下单明天能到吗",
    "偏远地区包邮吗",
    "退款申请被拒绝了",
    "怎么查看退款进度",
    "账号登录不上",
    "忘记密码怎么办",
    "怎么修改绑定的手机号",
    "怎么注销账号",
    "价格保护怎么申请",
    "刚买就降价了能退差价吗",
    "赠品没有收到",
    "少发了一件",
    "发错货了",
    "商品和描述不符",
    "外包装破损了",
    "能开发票抬头是公司吗",
    "电子发票在哪里下载",
    "分期付款怎么操作",
    "可以用花呗吗",
    "信用卡支付有手续费吗",
    "怎么申请售后",
    "售后电话是多少",
    "上门取件怎么预约",
    "快递员联系不上",
    "配送时间可以改吗",
    "能放快递柜吗",
    "海外可以发货吗",
    "关税谁承担",
    "预售商品什么时候发",
    "定金可以退吗",
    "尾款什么时候付",
    "活动什么时候开始",
    "满减怎么算",
    "优惠券过期了还能用吗",
    "新人优惠在哪里领",
    "邀请好友有奖励吗",
    "积分快过期了怎么办",
    "会员到期会自动续费吗",
    "怎么取消自动续费",
    "为什么我的订单被取消了",
    "订单一直显示待发货",
    "退货的运费险怎么理赔",
    "退货寄回去了多久处理",
    "换货寄出后多久能收到新的",
    "维修需要多长时间",
    "这款和那款有什么区别",
    "有没有现货",
    "可以批量采购吗",
    "企业采购有优惠吗",
    "怎么成为供应商",
    "门店地址在哪里",
    "营业时间是几点",
    "客服工作时间是什么时候",
    "你们是正品吗",
    "商品过敏了可以退吗",
    "食品拆封了能退吗",
    "生鲜坏了怎么赔",
    "家电安装收费吗",
    "安装师傅什么时候上门",
    "旧机回收怎么弄",
    "这个问题比较复杂，能不能帮我找个真人客服",
    "我已经问了三遍了，还是没解决",
    "你们的服务太差了",
    "算了不用了",
];

const EN_UTTERANCES: &[&str] = &[
    "Where is my order?",
    "How do I return an item?",
    "I want a refund",
    "When will my order ship?",
    "How can I cancel my order?",
    "I want to talk to a human agent",
    "How long does a refund take?",
    "Can you speed up the delivery?",
    "How do I change my shipping address?",
    "How do I get an invoice?",
    "Hi",
    "My tracking hasn't updated in days",
    "The item arrived damaged",
    "How do I exchange an item?",
    "My coupon doesn't work",
    "Thanks",
    "How do I request a return within 7 days?",
    "It says delivered but I never got it",
    "Who pays for return shipping?",
    "Can I pay cash on delivery?",
    "How do I become a member?",
    "How do I use my points?",
    "How can I contact the seller?",
    "When will this be back in stock?",
    "Can I change the color after ordering?",
    "What is the return address?",
    "My payment failed, what should I do?",
    "Why was I charged twice?",
    "I want to file a complaint",
    "Where can I find my order number?",
    "Can I get a VAT invoice?",
    "Does this product have a warranty?",
    "How long is the warranty?",
    "The size doesn't fit, can I swap it?",
    "My package was returned to sender",
    "Can I choose the courier?",
    "If I order today will it arrive tomorrow?",
    "Is shipping free to remote areas?",
    "My refund request was rejected",
    "How do I check my refund status?",
    "I can't log in to my account",
    "I forgot my password",
    "How do I change my phone number?",
    "How do I delete my account?",
    "How do I apply for price protection?",
    "The price dropped right after I bought it, can I get the difference back?",
    "I didn't receive the free gift",
    "One item is missing from my package",
    "You sent me the wrong item",
    "The product doesn't match the description",
    "The box was damaged",
    "Can the invoice be issued to my company?",
    "Where do I download the e-invoice?",
    "How do I pay in installments?",
    "Do you accept PayPal?",
    "Is there a fee for paying by credit card?",
    "How do I request after-sales service?",
    "What is the customer service phone number?",
    "How do I schedule a pickup for my return?",
    "I can't reach the delivery driver",
    "Can I change the delivery time?",
    "Can it be left in a parcel locker?",
    "Do you ship internationally?",
    "Who pays the import duties?",
    "When do pre-order items ship?",
    "Is the deposit refundable?",
    "When is the balance due?",
    "When does the sale start?",
    "How are the discounts calculated?",
    "Can I still use an expired coupon?",
    "Where do I get the new customer discount?",
    "Do I get a reward for inviting friends?",
    "My points are about to expire",
    "Will my membership renew automatically?",
    "How do I turn off auto-renewal?",
    "Why was my order cancelled?",
    "My order has been pending for days",
    "How do I claim return shipping insurance?",
    "How long until my return is processed?",
    "When will I get the replacement?",
    "How long does a repair take?",
    "What is the difference between these two models?",
    "Is this in stock?",
    "Can I buy in bulk?",
    "Do you have business discounts?",
    "How can I become a supplier?",
    "Where is your nearest store?",
    "What are your opening hours?",
    "When is customer service available?",
    "Are your products genuine?",
    "I had an allergic reaction, can I return it?",
    "Can I return opened food?",
    "The fresh produce went bad, will you compensate?",
    "Is installation free?",
    "When will the technician come?",
    "How does the trade-in program work?",
    "This is too complicated, please get me a real person",
    "I've asked three times and it's still not solved",
    "Your service is terrible",
    "Never mind",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn mix_parses_and_prints() {
        assert_eq!("Zipf".parse::<Mix>().unwrap(), Mix::Zipf);
        assert_eq!("unique".parse::<Mix>().unwrap(), Mix::Unique);
        assert!("pareto".parse::<Mix>().is_err());
        assert_eq!(Mix::Unique.to_string(), "unique");
        assert_eq!(serde_json::to_value(Mix::Zipf).unwrap(), "zipf");
    }

    #[test]
    fn utterance_lists_are_realistic_and_distinct() {
        for locale in [Locale::ZhCn, Locale::En] {
            let list = utterances(locale);
            assert!(list.len() >= 100, "{locale:?}: {}", list.len());
            let distinct: std::collections::HashSet<_> = list.iter().collect();
            assert_eq!(distinct.len(), list.len(), "{locale:?} has duplicates");
            assert!(list.iter().all(|t| !t.trim().is_empty() && t.chars().count() < 200));
        }
    }

    #[test]
    fn zipf_favours_the_head_and_unique_is_unique() {
        let mut t = Texts::new(Mix::Zipf, Locale::ZhCn, "n");
        let mut counts = HashMap::new();
        for k in 0..20_000 {
            *counts.entry(t.next(k)).or_insert(0u32) += 1;
        }
        let first = counts.get(ZH_UTTERANCES[0]).copied().unwrap_or(0);
        let tenth = counts.get(ZH_UTTERANCES[9]).copied().unwrap_or(0);
        // Expected ratio 10^1.1 ≈ 12.6.
        assert!(first > 6 * tenth.max(1), "rank 1: {first}, rank 10: {tenth}");
        assert!(counts.len() > 50, "the tail is sampled too: {}", counts.len());

        let mut t = Texts::new(Mix::Unique, Locale::ZhCn, "abcd");
        let texts: Vec<String> = (0..500).map(|k| t.next(k)).collect();
        let distinct: std::collections::HashSet<_> = texts.iter().collect();
        assert_eq!(distinct.len(), 500);
        assert!(texts[2].ends_with("（第3次，abcd）"), "{}", texts[2]);
        let mut t = Texts::new(Mix::Unique, Locale::En, "abcd");
        assert!(t.next(0).ends_with(" (#1, abcd)"));
    }
}
