#!/usr/bin/perl
# Classify bounce messages with the installed Sisimai (Debian libsisimai-perl 4.25)
# and print one TSV row per recipient.
#
# Usage: perl research/sisimai/sisimai425.pl DIR_OR_FILE [...] > out.tsv
#
# Each file is parsed on its own with Sisimai->make($path) so that files which
# yield no result can be reported (index 0, reason "(none)").
# Sisimai 4.25 has no "hardbounce" field; its "softbounce" value is printed
# instead (1 = soft, 0 = hard, -1 = unknown/not applicable).
use strict;
use warnings;
use File::Basename qw(basename);
use Sisimai;

die "usage: $0 DIR_OR_FILE [...]\n" unless @ARGV;

my @files;
for my $arg (@ARGV) {
    if (-d $arg) {
        opendir(my $dh, $arg) or die "cannot open $arg: $!\n";
        push @files, map { "$arg/$_" } grep { !/^\./ && -f "$arg/$_" } readdir($dh);
        closedir($dh);
    } elsif (-f $arg) {
        push @files, $arg;
    } else {
        die "not a file or directory: $arg\n";
    }
}
@files = sort { basename($a) cmp basename($b) || $a cmp $b } @files;

my $clean = sub { my $v = shift; $v = '' unless defined $v; $v =~ s/[\t\r\n]+/ /g; return $v };

print join("\t", qw(file index recipient reason deliverystatus replycode softbounce smtpagent)), "\n";
for my $path (@files) {
    my $name = basename($path);
    my $list = Sisimai->make($path);
    if (!defined $list || !@$list) {
        print join("\t", $name, 0, '', '(none)', '', '', '', ''), "\n";
        next;
    }
    my $i = 0;
    for my $e (@$list) {
        $i++;
        print join("\t", map { $clean->($_) } (
            $name, $i,
            (ref $e->recipient ? $e->recipient->address : $e->recipient),
            $e->reason, $e->deliverystatus, $e->replycode,
            $e->softbounce, $e->smtpagent,
        )), "\n";
    }
}
