# fish completion for turtlectl(1).
# turtlectl completes itself: `turtlectl __complete WORDS... CURRENT` prints
# the candidates (nouns, verbs, options, their values, and names of stacks,
# images, tenants... from the live turtled), one a line as
# "CANDIDATE<TAB>DESCRIPTION" (fish's own format), then a directive line:
# ":0" these candidates only, ":1" file names instead.

function __turtlectl_complete
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    set -l out ($words[1] __complete $words[2..-1] "$current" 2>/dev/null)
    or return
    set -l directive $out[-1]
    set -e out[-1]
    if test "$directive" = ":1"
        # "--file=spec.json": the file name follows the "=".
        set -l prefix (string match -r -- '^-[^=]*=' "$current")
        for path in (__fish_complete_path (string replace -r -- '^-[^=]*=' '' "$current"))
            printf '%s%s\n' "$prefix" "$path"
        end
        return
    end
    printf '%s\n' $out
end

complete -c turtlectl -f -a '(__turtlectl_complete)'
