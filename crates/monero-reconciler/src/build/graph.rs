//! The peer graphs of a MoneroNetwork: who is whose exclusive peer.
//!
//! Undirected: an edge i–j puts j in i's `add-exclusive-node` lines and i in
//! j's, so either end may open the connection and a restarted node finds its
//! neighbours again. Everything here is deterministic: a RandomRegular graph is
//! drawn from its seed with a generator written out below, so the same seed
//! gives the same graph on every operator build and every machine.

use std::collections::BTreeSet;

/// An undirected graph over nodes `0..n`, as adjacency sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Graph {
    adj: Vec<BTreeSet<usize>>,
}

/// How many fresh draws a RandomRegular graph may take before it is refused:
/// enough for a connected 2-regular graph on 256 nodes (a single cycle, the
/// least likely case) many times over.
const DRAWS: usize = 20_000;

impl Graph {
    fn empty(n: usize) -> Graph {
        Graph {
            adj: vec![BTreeSet::new(); n],
        }
    }

    fn add(&mut self, a: usize, b: usize) {
        if a != b {
            self.adj[a].insert(b);
            self.adj[b].insert(a);
        }
    }

    /// Every node a peer of every other.
    pub fn full_mesh(n: usize) -> Graph {
        let mut g = Graph::empty(n);
        for a in 0..n {
            for b in a + 1..n {
                g.add(a, b);
            }
        }
        g
    }

    /// Node i next to i-1 and i+1, the last next to the first.
    pub fn ring(n: usize) -> Graph {
        let mut g = Graph::empty(n);
        for a in 0..n {
            g.add(a, (a + 1) % n);
        }
        g
    }

    /// Every node a peer of the hub only.
    pub fn star(n: usize, hub: usize) -> Result<Graph, String> {
        if n > 0 && hub >= n {
            return Err(format!("the hub {hub} is not a node (0 to {})", n - 1));
        }
        let mut g = Graph::empty(n);
        for a in (0..n).filter(|a| *a != hub) {
            g.add(a, hub);
        }
        Ok(g)
    }

    /// The edges as given, each pair of node indices once in either order.
    pub fn from_edges(n: usize, edges: &[[i32; 2]]) -> Result<Graph, String> {
        let mut g = Graph::empty(n);
        for (k, [a, b]) in edges.iter().enumerate() {
            let index = |x: i32| usize::try_from(x).ok().filter(|x| *x < n);
            let (Some(a), Some(b)) = (index(*a), index(*b)) else {
                return Err(format!(
                    "edge {k} [{a}, {b}] names a node that is not one (0 to {})",
                    n.saturating_sub(1)
                ));
            };
            if a == b {
                return Err(format!("edge {k} joins node {a} to itself"));
            }
            g.add(a, b);
        }
        Ok(g)
    }

    /// A connected graph in which every node has `degree` peers, drawn from
    /// `seed`. Refused when none exists (`n * degree` odd, `degree >= n`, or
    /// a degree that cannot connect the nodes).
    pub fn random_regular(n: usize, degree: usize, seed: u64) -> Result<Graph, String> {
        if n < 2 {
            return Ok(Graph::empty(n));
        }
        if degree >= n {
            return Err(format!("degree {degree} needs more than {n} nodes"));
        }
        if (n * degree) % 2 == 1 {
            return Err(format!(
                "no graph of {n} nodes has {degree} peers each (nodes times degree must be even)"
            ));
        }
        if degree == 0 || (degree == 1 && n > 2) {
            return Err(format!("degree {degree} cannot connect {n} nodes"));
        }
        let mut rng = SplitMix64(seed);
        // A dense graph is drawn as the complement of a sparse one.
        let complement = degree > (n - 1) / 2;
        let d = if complement { n - 1 - degree } else { degree };
        for _ in 0..DRAWS {
            let Some(sparse) = draw_regular(n, d, &mut rng) else {
                continue;
            };
            let g = if complement {
                sparse.complement()
            } else {
                sparse
            };
            if g.is_connected() {
                return Ok(g);
            }
        }
        Err(format!(
            "no connected graph of {n} nodes with {degree} peers each was found from seed {seed}; try another seed or degree"
        ))
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.adj.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.adj.is_empty()
    }

    /// Node `i`'s peers, in index order.
    pub fn neighbours(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.adj.get(i).into_iter().flatten().copied()
    }

    /// Node `i`'s number of peers.
    pub fn degree(&self, i: usize) -> usize {
        self.adj.get(i).map_or(0, BTreeSet::len)
    }

    /// Every edge once, as (smaller, larger).
    pub fn edges(&self) -> BTreeSet<(usize, usize)> {
        self.adj
            .iter()
            .enumerate()
            .flat_map(|(a, peers)| peers.iter().filter(move |b| **b > a).map(move |b| (a, *b)))
            .collect()
    }

    /// Whether every node can reach every other.
    pub fn is_connected(&self) -> bool {
        let n = self.adj.len();
        if n < 2 {
            return true;
        }
        let mut seen = vec![false; n];
        let mut stack = vec![0];
        seen[0] = true;
        while let Some(a) = stack.pop() {
            for &b in &self.adj[a] {
                if !seen[b] {
                    seen[b] = true;
                    stack.push(b);
                }
            }
        }
        seen.into_iter().all(|s| s)
    }

    fn complement(&self) -> Graph {
        let n = self.adj.len();
        let mut g = Graph::empty(n);
        for a in 0..n {
            for b in a + 1..n {
                if !self.adj[a].contains(&b) {
                    g.add(a, b);
                }
            }
        }
        g
    }
}

/// One draw of a `d`-regular graph: stubs paired at random, never a node with
/// itself or a pair twice; None when the draw paints itself into a corner.
fn draw_regular(n: usize, d: usize, rng: &mut SplitMix64) -> Option<Graph> {
    let mut g = Graph::empty(n);
    let mut stubs: Vec<usize> = (0..n).flat_map(|a| std::iter::repeat_n(a, d)).collect();
    while !stubs.is_empty() {
        // Try a few pairs for the last stub before giving this draw up.
        let a = stubs.pop()?;
        let fits: Vec<usize> = (0..stubs.len())
            .filter(|k| stubs[*k] != a && !g.adj[a].contains(&stubs[*k]))
            .collect();
        if fits.is_empty() {
            return None;
        }
        let k = fits[rng.below(fits.len())];
        let b = stubs.swap_remove(k);
        g.add(a, b);
    }
    Some(g)
}

/// SplitMix64 (Steele, Lea and Flood): a small generator written out here so
/// that a seed means the same graph whatever version of a random crate is used.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (bound > 0), without modulo bias worth minding
    /// for graphs of at most a few hundred nodes.
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn degrees(g: &Graph) -> Vec<usize> {
        (0..g.len()).map(|i| g.degree(i)).collect()
    }

    #[test]
    fn full_mesh_ring_and_star_have_their_shapes() {
        let m = Graph::full_mesh(5);
        assert_eq!(degrees(&m), [4; 5]);
        assert_eq!(m.edges().len(), 10);
        let r = Graph::ring(5);
        assert_eq!(degrees(&r), [2; 5]);
        assert_eq!(r.neighbours(0).collect::<Vec<_>>(), [1, 4]);
        assert!(r.is_connected());
        assert_eq!(Graph::ring(2).edges().len(), 1);
        assert_eq!(Graph::ring(1).edges().len(), 0);
        let s = Graph::star(5, 2).unwrap();
        assert_eq!(degrees(&s), [1, 1, 4, 1, 1]);
        assert!(Graph::star(5, 5).unwrap_err().contains("hub 5"));
    }

    #[test]
    fn explicit_edges_are_checked() {
        let g = Graph::from_edges(4, &[[0, 1], [1, 2], [2, 1]]).unwrap();
        assert_eq!(g.edges(), BTreeSet::from([(0, 1), (1, 2)]));
        assert!(!g.is_connected(), "node 3 has no edge");
        assert!(
            Graph::from_edges(4, &[[0, 4]])
                .unwrap_err()
                .contains("edge 0 [0, 4]")
        );
        assert!(Graph::from_edges(4, &[[-1, 2]]).is_err());
        assert!(
            Graph::from_edges(4, &[[2, 2]])
                .unwrap_err()
                .contains("to itself")
        );
    }

    #[test]
    fn random_regular_graphs_are_regular_connected_and_decided_by_their_seed() {
        for (n, d) in [
            (10, 3),
            (20, 4),
            (7, 2),
            (12, 9),
            (256, 2),
            (256, 8),
            (40, 39),
            (2, 1),
        ] {
            let g = Graph::random_regular(n, d, 7).unwrap();
            assert_eq!(degrees(&g), vec![d; n], "n {n} d {d}");
            assert!(g.is_connected(), "n {n} d {d}");
            assert_eq!(
                g,
                Graph::random_regular(n, d, 7).unwrap(),
                "same seed, same graph"
            );
        }
        let a = Graph::random_regular(20, 3, 1).unwrap();
        let b = Graph::random_regular(20, 3, 2).unwrap();
        assert_ne!(a, b, "another seed, another graph");
    }

    #[test]
    fn impossible_random_regular_graphs_are_refused_saying_why() {
        assert!(
            Graph::random_regular(5, 3, 0)
                .unwrap_err()
                .contains("must be even")
        );
        assert!(
            Graph::random_regular(4, 4, 0)
                .unwrap_err()
                .contains("more than 4 nodes")
        );
        assert!(
            Graph::random_regular(6, 1, 0)
                .unwrap_err()
                .contains("cannot connect")
        );
        assert!(Graph::random_regular(6, 0, 0).is_err());
    }

    #[test]
    fn the_generator_is_splitmix64() {
        // The published first outputs for seed 0, so the graphs a seed names
        // cannot drift with a change to the generator.
        let mut r = SplitMix64(0);
        assert_eq!(r.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next(), 0x6E78_9E6A_A1B9_65F4);
    }
}
