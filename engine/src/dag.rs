//! The task graph: tasks are nodes, each route target is an edge.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, EdgeRef};

use crate::model::Task;

/// An edge: route `route` of the source task points at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRef {
    /// Index of the route in the source task's `next`.
    pub route: usize,
}

/// The graph of a workflow's tasks.
#[derive(Debug, Clone)]
pub struct Dag {
    graph: DiGraph<String, RouteRef>,
    index: HashMap<String, NodeIndex>,
}

impl Dag {
    /// Builds the graph; route targets that are not tasks are ignored (validation reports them).
    pub fn build(tasks: &IndexMap<String, Task>) -> Dag {
        let mut graph = DiGraph::new();
        let mut index = HashMap::new();
        for name in tasks.keys() {
            index.insert(name.clone(), graph.add_node(name.clone()));
        }
        for (name, task) in tasks {
            let from = index[name];
            for (i, route) in task.next.iter().enumerate() {
                let mut seen = HashSet::new();
                for target in &route.targets {
                    if let Some(&to) = index.get(&target.value)
                        && seen.insert(to)
                    {
                        graph.add_edge(from, to, RouteRef { route: i });
                    }
                }
            }
        }
        Dag { graph, index }
    }

    /// Tasks no route points to, in file order.
    pub fn start_tasks(&self) -> Vec<&str> {
        self.graph
            .node_indices()
            .filter(|&n| {
                self.graph
                    .edges_directed(n, Direction::Incoming)
                    .next()
                    .is_none()
            })
            .map(|n| self.graph[n].as_str())
            .collect()
    }

    /// Inbound routes of a task: (source task, route index), in file order of the sources.
    pub fn inbound(&self, task: &str) -> Vec<(&str, RouteRef)> {
        let Some(&n) = self.index.get(task) else {
            return Vec::new();
        };
        let mut v: Vec<_> = self
            .graph
            .edges_directed(n, Direction::Incoming)
            .map(|e| (e.source(), *e.weight()))
            .collect();
        v.sort_by_key(|(s, r)| (s.index(), r.route));
        v.into_iter()
            .map(|(s, r)| (self.graph[s].as_str(), r))
            .collect()
    }

    /// Every cycle, each named as a path that returns to its first task (`a → b → a`).
    /// One cycle is reported per strongly connected group of tasks.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for scc in petgraph::algo::tarjan_scc(&self.graph) {
            let members: HashSet<NodeIndex> = scc.iter().copied().collect();
            let start = *scc
                .iter()
                .min_by_key(|n| n.index())
                .expect("scc is non-empty");
            let self_loop = self
                .graph
                .edges_directed(start, Direction::Outgoing)
                .any(|e| e.target() == start);
            if scc.len() == 1 && !self_loop {
                continue;
            }
            if let Some(path) = self.path_back(start, &members) {
                out.push(path.into_iter().map(|n| self.graph[n].clone()).collect());
            }
        }
        out.sort_by_key(|c| self.index[&c[0]].index());
        out
    }

    /// A path from `start` back to itself inside `members`, preferring low file order.
    fn path_back(&self, start: NodeIndex, members: &HashSet<NodeIndex>) -> Option<Vec<NodeIndex>> {
        let mut stack = vec![(start, self.successors(start, members))];
        let mut path = vec![start];
        let mut visited = HashSet::from([start]);
        while let Some((_, succ)) = stack.last_mut() {
            match succ.pop() {
                Some(next) if next == start => {
                    path.push(start);
                    return Some(path);
                }
                Some(next) if visited.insert(next) => {
                    path.push(next);
                    let s = self.successors(next, members);
                    stack.push((next, s));
                }
                Some(_) => {}
                None => {
                    stack.pop();
                    path.pop();
                }
            }
        }
        None
    }

    /// Successors inside `members`, highest index first (so popping visits file order).
    fn successors(&self, n: NodeIndex, members: &HashSet<NodeIndex>) -> Vec<NodeIndex> {
        let mut s: Vec<NodeIndex> = self
            .graph
            .neighbors_directed(n, Direction::Outgoing)
            .filter(|m| members.contains(m))
            .collect();
        s.sort_by_key(|m| std::cmp::Reverse(m.index()));
        s.dedup();
        s
    }

    /// Tasks reachable from the start tasks.
    pub fn reachable(&self) -> HashSet<&str> {
        let mut seen = HashSet::new();
        for start in self.start_tasks() {
            let mut bfs = Bfs::new(&self.graph, self.index[start]);
            while let Some(n) = bfs.next(&self.graph) {
                seen.insert(self.graph[n].as_str());
            }
        }
        seen
    }

    /// Tasks that appear in some cycle.
    pub fn in_cycles(&self) -> HashSet<String> {
        self.cycles().into_iter().flatten().collect()
    }
}
