//! Scratch: where the encoder's time goes.
use std::time::Instant;
use switchboard_operators::intent::encoder::{resolve_model_dir, Encoder};
use switchboard_operators::intent::load_examples;

fn main() {
    let name = std::env::args().nth(1).unwrap_or("m3e-small".into());
    let file = std::env::args().nth(2).unwrap_or("operators/data/intents/test.zh.jsonl".into());
    let enc = Encoder::load(&resolve_model_dir(&name)).expect("load");
    let mut texts: Vec<String> = load_examples(&file).expect("data").into_iter().map(|e| e.text).collect();
    texts.sort();
    texts.dedup();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    println!("{} texts", refs.len());
    for _ in 0..2 {
        let t = Instant::now();
        for chunk in refs.chunks(32) {
            enc.embed(chunk).expect("embed");
        }
        let s = t.elapsed().as_secs_f64();
        println!("batch32 as-is: {:.1} texts/s", refs.len() as f64 / s);
        let mut sorted = refs.clone();
        sorted.sort_by_key(|t| t.chars().count());
        let t = Instant::now();
        for chunk in sorted.chunks(32) {
            enc.embed(chunk).expect("embed");
        }
        let s = t.elapsed().as_secs_f64();
        println!("batch32 length-sorted: {:.1} texts/s", refs.len() as f64 / s);
        let t = Instant::now();
        for text in &refs[..100] {
            enc.embed(&[text]).expect("embed");
        }
        println!("single: {:.1} texts/s", 100.0 / t.elapsed().as_secs_f64());
    }
}
